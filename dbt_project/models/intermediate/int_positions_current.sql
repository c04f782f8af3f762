-- The newest checkpoint of every (wallet, token): its state after all fills loaded so far.
-- A view (see macros/positions.sql: argMax streamed in primary-key order, no FINAL).
{{ latest_checkpoints(ref('int_position_days')) }}
