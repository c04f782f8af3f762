-- One row per (wallet, token): the newest average-cost state with its condition, the PnL
-- a resolution realized, and the open position marked to market (macros/positions.sql
-- holds the rules, shared with int_wallet_markets' nightly path). A view: the marts'
-- fct_wallet_positions selects from it, and no intermediate model reads a mart.
{{ valued_positions('(select * from ' ~ ref('int_positions_current') ~ ')') }}
