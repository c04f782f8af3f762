-- The newest stored state of every (wallet, token): int_position_state keeps one row per
-- nightly update of a key, and FINAL keeps the latest.
select * from {{ ref('int_position_state') }} final
