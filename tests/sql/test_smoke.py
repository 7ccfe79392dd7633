def test_finish_build_returns_true(conn):
    build_id = conn.execute("select buildq.queue_build('j', 'x86_64-linux', '/s/a')").fetchone()[0]
    assert conn.execute("select buildq.finish_build(%s, 0)", (build_id,)).fetchone()[0] is True
