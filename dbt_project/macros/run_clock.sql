{#-
    The night's clock: `run_at` ('YYYY-MM-DD hh:mm:ss.fff', UTC) as the nightly run passes it
    in CASCADIAN_RUN_AT, or the engine's now() when dbt runs on its own. Models that record
    when the pipeline first saw something use it, so a replayed night records its own date.
-#}
{% macro run_clock(run_at) -%}
    {%- if run_at -%}
        toDateTime64('{{ run_at }}', 3, 'UTC')
    {%- else -%}
        now64(3, 'UTC')
    {%- endif -%}
{%- endmacro %}
