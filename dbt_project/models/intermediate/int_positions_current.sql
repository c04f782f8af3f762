-- The newest checkpoint of every (wallet, token): its state after all fills loaded so far.
-- A view (see macros/positions.sql: read in primary-key order, newest day first, no FINAL).
{{ latest_checkpoints(ref('int_position_days')) }}
