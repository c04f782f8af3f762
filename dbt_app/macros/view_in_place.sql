{#
  Materialization `view_in_place`: dbt's view materialization, except that an existing view
  is replaced with CREATE OR REPLACE VIEW whenever Postgres allows it.

  Why: dbt-postgres builds a view as `<name>__dbt_tmp`, renames the old one to
  `<name>__dbt_backup`, renames the new one into place and then drops the backup CASCADE.
  The cascade drops every view built on the old one (strategy_overview reads
  watchlist_enriched), and they stay missing until their own models run: the API answered
  503 "relation does not exist" for a moment of every nightly publish. CREATE OR REPLACE
  keeps the view (same OID) and its dependents, in one transaction with the rest of the model.

  Postgres accepts it when the existing view's columns (names, types with their modifiers,
  collations, in order) are a prefix of the new query's: new columns may only be appended.
  To compare exactly what Postgres compares, the new query is first created as the
  intermediate view, as dbt does anyway. When it is not a prefix (a column renamed, retyped
  or moved), or when there is no view by that name yet (nothing, or a table), this does what
  dbt's own view materialization does (global_project/.../models/view.sql, dbt-core 1.11):
  swap and drop CASCADE; `dbt build` then rebuilds the dependents, which run after this model.
  Used for every model of dbt_app (dbt_project.yml); tested in
  tests/test_watchlist_migrations.py.
#}
{%- materialization view_in_place, adapter='postgres' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type = 'view' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {{ get_create_view_as_sql(intermediate_relation, sql) }}
  {%- endcall %}

  {%- set in_place = existing_relation is not none and existing_relation.is_view
                     and view_in_place_columns_compatible(existing_relation, intermediate_relation) -%}

  {% if in_place %}
    {% call statement('replace_view') -%}
      {{ get_replace_view_sql(target_relation, sql) }}
    {%- endcall %}
    {% do adapter.drop_relation(intermediate_relation) %}
  {% else %}
    {% if existing_relation is not none %}
      {% set existing_relation = load_cached_relation(existing_relation) %}
      {% if existing_relation is not none %}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
      {% endif %}
    {% endif %}
    {{ adapter.rename_relation(intermediate_relation, target_relation) }}
  {% endif %}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {{ adapter.commit() }}

  {% if not in_place %}
    {{ drop_relation_if_exists(backup_relation) }}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}


{#
  True when `old`'s columns are, in order, the first columns of `new` with the same names,
  types, type modifiers and collations: the condition under which Postgres lets
  CREATE OR REPLACE VIEW turn `old` into `new` (checkViewColumns in view.c).
#}
{% macro view_in_place_columns_compatible(old, new) -%}
  {% call statement('view_in_place_columns', fetch_result=True) -%}
    with old_columns as (
        select attnum, attname, atttypid, atttypmod, attcollation
        from pg_attribute
        where attrelid = '{{ old.include(database=false) }}'::regclass
          and attnum > 0 and not attisdropped
    ),
    new_columns as (
        select attnum, attname, atttypid, atttypmod, attcollation
        from pg_attribute
        where attrelid = '{{ new.include(database=false) }}'::regclass
          and attnum > 0 and not attisdropped
    )
    select count(*) = (select count(*) from old_columns) as compatible
    from old_columns
    join new_columns using (attnum, attname, atttypid, atttypmod, attcollation)
  {%- endcall %}
  {{ return(load_result('view_in_place_columns').table.rows[0][0]) }}
{%- endmacro %}
