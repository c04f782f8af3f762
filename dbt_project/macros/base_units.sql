{#- Money is stored as integers in 10^6 base units; these give exact decimal views of it. -#}
{% macro to_usd(column) -%}
    toDecimal128({{ column }}, 6) / 1000000
{%- endmacro %}

{#- Scale of prices and amounts: 6 decimals for collateral and outcome tokens alike. -#}
{% macro unit() -%}
    toInt128(1000000)
{%- endmacro %}
