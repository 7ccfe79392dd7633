-- Partial index for buildq.pending_notifications(), which a notifier calls at
-- every start: only finished builds whose notification is not yet
-- acknowledged have a non-null notification_pending_since, so the index
-- stays small however many builds the table holds.
-- The file holds no begin/commit because the caller supplies the transaction.

insert into buildq.schema_migrations (version, description)
values (6, 'index_pending_notifications');

create index builds_notification_pending_idx
on buildq.builds (notification_pending_since, id)
where notification_pending_since is not null;
