# Create or refresh the project's virtualenv. examples/demo, .ci/test and
# .ci/run source this file.

# ensure_venv REPO VENV EXTRAS
# Create VENV with python3 when missing and install REPO editable with the
# given extras ("" or "[test]"). Reinstalls when pyproject.toml changed since
# the last install, so a stale environment never hides a new dependency.
ensure_venv() {
  local repo=$1 venv=$2 extras=$3 stamp want
  stamp="$venv/.buildq-installed"
  want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1) $extras"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "python3 not found. Install Python 3.11 or newer." >&2; return 1; }
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv" >&2
    python3 -m venv "$venv"
  fi
  echo "installing buildq$extras into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$repo$extras"
  printf '%s\n' "$want" >"$stamp"
}
