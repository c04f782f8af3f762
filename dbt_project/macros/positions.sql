{#-
    The newest checkpoint of each (wallet, token) in `relation` (int_position_days): each
    key's rows by day and version, newest first, and the first. The engine reads the table in
    its (wallet, token_id) order and only sorts each key's few days, with no FINAL. An argMax
    of the 13 columns over (day, state_version) gives the same rows but copies a tuple per
    row: every key at 10M bench fills took 11.1 s that way, 3.8 s this way. A night's lookup
    of some keys reads by position_key instead (checkpoints_by_position_key).
-#}
{% macro latest_checkpoints(relation) -%}
    select {{ checkpoint_columns() }}
    from {{ relation }}
    order by wallet asc, token_id asc, day desc, state_version desc
    limit 1 by wallet, token_id
{%- endmacro %}

{#- The columns of a checkpoint that its readers use (all of int_position_days' but the
    day's own sums and position_key). -#}
{% macro checkpoint_columns() -%}
    wallet, token_id, day, amount, avg_price, trading_pnl, bought, n_fills, volume,
    buy_collateral, first_fill_at, last_fill_at, loaded_through, state_version
{%- endmacro %}

{#-
    A (wallet, token) key as one UInt128, the 128-bit SipHash of both: int_position_days
    stores it as `position_key` for the night's lookups of its changed keys.
    Why: those keys fall in every granule (at the 10M bench night 238,233 keys of 73,646
    wallets hit all 1,102 granules), so each lookup scans the table. Probing 16 bytes a row
    instead of hashing the two strings (about 130 bytes), and sorting and taking each key's
    newest row by one number instead of two strings, made the grain's read of its pairs'
    newest checkpoints 0.33 s instead of 1.1 s there.
    Equal hashes are taken for equal keys, as the engine itself does for the exact condition
    this replaces: a multi-column IN, JOIN or LIMIT BY over strings keeps "cryptographic
    hashes of unambiguously serialized values" (ClickHouse's SetVariants), a SipHash128 too.
-#}
{% macro position_key(wallet, token_id) -%}
    reinterpretAsUInt128(sipHash128({{ wallet }}, {{ token_id }}))
{%- endmacro %}

{#-
    The newest row of each (wallet, token) of `relation` (int_position_days), or of each
    (wallet, token, day) with `per_day`, for the keys of `keys` (a CTE of wallet, token_id):
    a PREWHERE on the stored position_key, then the newest version by sorting the matched
    rows by (position_key, day, state_version), with no FINAL. A dbt unit test's given rows
    (a CTE) carry no position_key: there it is computed, in a WHERE.
-#}
{% macro checkpoints_by_position_key(relation, keys, columns='*', per_day=false) -%}
    {%- set stored = relation is not string and '__dbt__cte__' not in (relation | string) -%}
    {%- set key = 'position_key' if stored else position_key('wallet', 'token_id') -%}
    select {{ columns }}
    from {{ relation }}
    {{ 'prewhere' if stored else 'where' }} {{ key }} in (
        select {{ position_key(keys ~ '.wallet', keys ~ '.token_id') }} from {{ keys }}
    )
    order by {{ key }} asc, day desc, state_version desc
    limit 1 by {{ key }}{{ ', day' if per_day }}
{%- endmacro %}

{#-
    Every position of `positions` (rows shaped like int_positions_current) with its market
    and value: the one place the resolution and mark-to-market rules are written (docs/pnl.md).
      resolution_pnl = amount x (payout_price - avg_price) / 10^6, once resolved
      open_amount    = amount while unresolved, 0 once resolved
      mark_price     = the token's last fill price (any wallet), or the payout price once resolved
      unrealized_pnl = open_amount x (mark_price - avg_price) / 10^6 (0 when nothing is open)
      current_value  = open_amount x mark_price / 10^6
    Divisions truncate toward zero (intDiv), as the fold's do. market_key is the condition, or
    the token itself when no source maps it (such a token counts as its own market).
-#}
{% macro valued_positions(positions) -%}
    select
        located.wallet                                                   as wallet,
        located.token_id                                                 as token_id,
        located.condition_id                                             as condition_id,
        located.outcome_index                                            as outcome_index,
        toUInt64(located.amount)                                         as amount,
        toUInt64(open_position)                                          as open_amount,
        toUInt64(located.avg_price)                                      as avg_price,
        toInt128(located.trading_pnl + settled_pnl)                      as realized_pnl,
        toInt128(located.trading_pnl)                                    as trading_pnl,
        toInt128(settled_pnl)                                            as resolution_pnl,
        toUInt64(located.bought)                                         as total_bought,
        toUInt64(located.n_fills)                                        as n_fills,
        toUInt64(located.volume)                                         as volume,
        toUInt64(located.buy_collateral)                                 as buy_collateral,
        located.is_resolved                                              as is_resolved,
        located.first_fill_at                                            as first_fill_at,
        located.last_fill_at                                             as last_fill_at,
        toUInt64(mark)                                                   as mark_price,
        located.mark_at                                                  as mark_at,
        toInt128(unrealized)                                             as unrealized_pnl,
        toInt128(located.trading_pnl + settled_pnl + unrealized)         as total_pnl,
        toUInt64(intDiv(open_position * mark, {{ unit() }}))             as current_value,
        coalesce(located.condition_id, located.token_id)                 as market_key,
        located.resolved_outcome                                         as resolved_outcome,
        -- the rules, in order of use
        if(located.is_resolved, located.payout_price, located.last_price) as mark,
        if(located.is_resolved, toInt128(0), located.amount)             as open_position,
        if(located.is_resolved,
           intDiv(located.amount * (located.payout_price - located.avg_price), {{ unit() }}),
           toInt128(0))                                                  as settled_pnl,
        if(open_position = 0, toInt128(0),
           intDiv(open_position * (mark - located.avg_price), {{ unit() }})) as unrealized
    from (
        select
            positions.wallet                                             as wallet,
            positions.token_id                                           as token_id,
            positions.amount                                             as amount,
            positions.avg_price                                          as avg_price,
            positions.trading_pnl                                        as trading_pnl,
            positions.bought                                             as bought,
            positions.n_fills                                            as n_fills,
            positions.volume                                             as volume,
            positions.buy_collateral                                     as buy_collateral,
            positions.first_fill_at                                      as first_fill_at,
            positions.last_fill_at                                       as last_fill_at,
            tokens.condition_id                                          as condition_id,
            tokens.outcome_index                                         as outcome_index,
            ifNull(resolutions.is_resolved, false)                       as is_resolved,
            resolutions.resolved_outcome                                 as resolved_outcome,
            toInt128(if(is_resolved,
                        resolutions.payout_prices[assumeNotNull(tokens.outcome_index) + 1],
                        0))                                              as payout_price,
            toInt128(ifNull(marks.mark_price, 0))                        as last_price,
            if(is_resolved, resolutions.resolved_at, marks.mark_at)      as mark_at
        from {{ positions }} as positions
        left join {{ ref('int_token_conditions') }} as tokens
            on positions.token_id = tokens.token_id
        left join (select * from {{ ref('int_resolutions') }} where is_resolved) as resolutions
            on tokens.condition_id = resolutions.condition_id
        left join (
            select
                token_id,
                argMax(mark_price, mark_version) as mark_price,
                argMax(mark_at, mark_version)    as mark_at
            from {{ ref('int_token_marks') }}
            group by token_id
        ) as marks
            on positions.token_id = marks.token_id
    ) as located
{%- endmacro %}

{#-
    The rows of `relation` (as `alias`) for the (wallet, token) keys tonight's fills touched,
    read through the (wallet, token_id) sort key (the IN lets the engine skip the other
    keys' granules, key_prewhere() makes a scan cheap when it cannot; the join brings each
    key's start_day), and meeting `condition`.
    int_position_days reads its prior checkpoints and the fills to re-fold with it; the
    caller defines the `touched` CTE (wallet, token_id, start_day).
-#}
{% macro touched_key_rows(relation, alias, condition) -%}
    select {{ alias }}.*
    from {{ relation }} as {{ alias }}
    inner join touched
        on {{ alias }}.wallet = touched.wallet and {{ alias }}.token_id = touched.token_id
    {{ key_prewhere(
        relation, alias ~ '.wallet, ' ~ alias ~ '.token_id',
        'touched as touched_key', 'touched_key.wallet, touched_key.token_id'
    ) }}
    where
        ({{ alias }}.wallet, {{ alias }}.token_id) in (
            select
                touched_key.wallet,
                touched_key.token_id
            from touched as touched_key
        )
        and {{ condition }}
{%- endmacro %}
