{#-
    The leaderboard's short windows, (name, days), shortest first; 'all' (window_days 0) is
    added by the models. int_leaderboard_board_sums sums them, int_leaderboard_windows names
    them.
-#}
{% macro leaderboard_windows() -%}
    {{ return([('1d', 1), ('7d', 7), ('30d', 30)]) }}
{%- endmacro %}

{#-
    A board row's place in the order a board is ranked by `measure` (descending, ties by the
    smaller wallet), as one UInt256 that is larger for the better place: the measure in the high
    bits, the complement of the wallet's 160-bit address in the low 160. One number lets an
    ASOF join count the rows above a wallet (int_leaderboard_windows) instead of a window
    function ordering every row of every board.
    Exact within its bounds, which the expression checks and fails loudly outside: the wallet
    is an address ('0x' and 40 lower-case hex digits, the raw contract's), so its hex order is
    its numeric order; a volume is a UInt64 (64 + 160 bits); a realized PnL is offset by 2^95
    into 96 unsigned bits (96 + 160 = 256), so it must lie within +-2^95 base units, about
    4 x 10^22 USD.
-#}
{% macro leaderboard_sort_key(measure, relation) -%}
    {%- set wallet = relation ~ '.wallet' -%}
    {%- set value = relation ~ '.' ~ measure -%}
    {%- if measure == 'realized_pnl' -%}
        {%- set unsigned = 'toUInt256(' ~ value ~ " + toInt128('39614081257132168796771975168'))" -%}
        {%- set in_range = 'abs(' ~ value ~ ") < toInt128('39614081257132168796771975168')" -%}
    {%- else -%}
        {%- set unsigned = 'toUInt256(' ~ value ~ ')' -%}
        {%- set in_range = 'true' -%}
    {%- endif -%}
    bitOr(
        bitOr(
            bitShiftLeft({{ unsigned }}, 160),
            bitXor(
                reinterpretAsUInt256(reverse(unhex(substring({{ wallet }}, 3)))),
                toUInt256('1461501637330902918203684832716283019655932542975')
            )
        ),
        toUInt256(throwIf(
            not ({{ in_range }} and length({{ wallet }}) = 42 and startsWith({{ wallet }}, '0x')),
            'leaderboard: a {{ measure }} or wallet outside the ranking key (docs/pnl.md)'
        ))
    )
{%- endmacro %}

{#-
    The days that bound every board, from `fills` (the staged fills): as_of_day, the last UTC
    day with fills, where the short windows end, and first_day, where 'all' starts. The min
    and max of the fills' timestamp, which the engine answers from its part metadata.
-#}
{% macro leaderboard_bounds(fills) -%}
    select
        toDate(max(filled_at), 'UTC') as as_of_day,
        toDate(min(filled_at), 'UTC') as first_day
    from {{ fills }}
{%- endmacro %}

{#-
    The board of `relation`'s row as one UInt64 for int_leaderboard_windows's ASOF joins: the
    window's days in the high 32 bits, the category's 1-based place in that model's
    `board_categories` in the low (0 when not listed).
-#}
{% macro board_key(relation) -%}
    bitOr(
        bitShiftLeft(toUInt64({{ relation }}.window_days), 32),
        transform(
            {{ relation }}.category,
            (select board_categories.categories from board_categories),
            arrayEnumerate((select board_categories.categories from board_categories)),
            toUInt32(0)
        )
    )
{%- endmacro %}
