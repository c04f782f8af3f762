{#-
    `relation` read with FINAL (the newest row per key of a ReplacingMergeTree), except in a
    dbt unit test, where dbt replaces the relation by a CTE of given rows that FINAL cannot
    apply to (and that holds one row per key anyway). Lets the models that read versioned
    tables be unit-tested.
-#}
{% macro final_rows(relation) -%}
    {%- if '__dbt__cte__' in (relation | string) -%}
        {{ relation }}
    {%- else -%}
        {{ relation }} final
    {%- endif -%}
{%- endmacro %}
