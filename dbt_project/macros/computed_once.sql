{#-
    `<name> as {{ computed_once() }} (<select>)`: a CTE the query reads more than once, computed
    once. ClickHouse inlines a CTE at each reference, so a night's set of changed keys (read by
    the lookup's hash PREWHERE, its exact IN, its join) was built from scratch each time.
    With `materialized` the engine builds it once into a temporary in-memory table and every
    reference reads that. Measured on the 10M bench night: int_position_days 2.4 -> 1.9 s
    (`touched`, read six times), int_wallet_markets 4.5 -> 3.4 s (`candidates` four times,
    `pair_positions` twice), int_wallet_market_days 2.9 -> 2.3 s; the same rows.
    Materialized CTEs are experimental in ClickHouse (26.3 and later, setting
    `enable_materialized_cte`), so the keyword is emitted only when the session has them on:
    the embedded profile sets it (chDB is pinned); a server runs the plain CTEs unless its
    profile's custom_settings add `enable_materialized_cte: 1`. A server without the setting
    never sees the keyword. Only for a model's own query (a table or incremental model), never
    in a view: a view's readers do not carry the setting. Being experimental, it has known
    engine bugs: a prototype whose materialized CTE read another one and was then read by an
    ASOF join failed with LOGICAL_ERROR "Reading from materialized CTE ... before its
    materialization completed". Every CTE marked here runs in the incremental-equals-rebuild
    tests and the 10M bench night, whose marts equal the yardstick.
-#}
{% macro computed_once() -%}
    {%- if execute -%}
        {%- set enabled = run_query(
            "select value from system.settings where name = 'enable_materialized_cte'"
        ) -%}
        {%- if enabled.rows | length > 0 and enabled.rows[0][0] in ('1', 'true') -%}
            materialized
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
