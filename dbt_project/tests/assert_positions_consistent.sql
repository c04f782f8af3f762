{{ config(tags = ['whole_history']) }}

-- A position never holds more than it bought, never goes negative (a negative Int128 cast
-- to UInt64 would wrap to a huge number, caught by the first condition), and holds
-- nothing open once its condition resolved.
select wallet, token_id, amount, open_amount, total_bought
from {{ ref('fct_wallet_positions') }}
where amount > total_bought
   or open_amount > amount
   or (is_resolved and open_amount != 0)
