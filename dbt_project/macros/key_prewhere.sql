{#-
    `prewhere cityHash64(<key>) in (select cityHash64(<keys_key>) from <keys>)`: the first
    half of a lookup of a night's changed keys in a stored table sorted by them. The caller
    keeps the exact condition, `(<key>) in (select <keys_key> from <keys>)`, in its WHERE: a
    hash collision can only let an extra row reach it, never lose one.
    Why: the changed keys (about 120,000 pairs on the 10M bench night) fall in every granule,
    so these reads scan the table, and probing a set of UInt64 for each scanned row costs far
    less than probing a set of (String, String). 10M bench night, int_position_days, 136,177
    keys: 2.3-2.6 s -> 1.7 s read in key order, 2.3 s -> 1.35 s with FINAL, 2.1 s -> 1.45 s
    behind a join. As PREWHERE because in WHERE the engine evaluated the two conditions the
    other way round and was slower than the exact one alone (2.8 s). PREWHERE filters before
    FINAL merges a key's versions; correct here, where a key passes whole or not at all.
    Only a stored table takes a PREWHERE: for a CTE (a dbt unit test's given rows, or a
    model's own CTE) nothing is emitted and the exact condition does the work alone.
    The grain's and the daily rows' reads of int_position_days probe its stored position_key
    instead (checkpoints_by_position_key, macros/positions.sql): no string hashed per row.
-#}
{% macro key_prewhere(relation, key, keys, keys_key=none) -%}
    {%- if relation is not string and '__dbt__cte__' not in (relation | string) -%}
        prewhere cityHash64({{ key }}) in (select cityHash64({{ keys_key or key }}) from {{ keys }})
    {%- endif -%}
{%- endmacro %}
