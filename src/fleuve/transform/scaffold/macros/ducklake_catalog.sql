{#-
  Listing a DuckLake schema through information_schema makes DuckDB enumerate every attached
  catalog, the DuckLake metadata database included; on a SQLite catalog that takes a large share
  of a short dbt command. DuckLake's own catalog tables answer the same questions directly.
  Other databases are listed as dbt-duckdb lists them.
-#}

{% macro ducklake_metadata(database) -%}
    {#- The qualified prefix of DuckLake's catalog tables for the lake attached as `database`. -#}
    {%- for attachment in target.attach or [] -%}
        {%- set alias = attachment.alias if attachment.alias is defined else attachment['alias'] -%}
        {%- set path = attachment.path if attachment.path is defined else attachment['path'] -%}
        {%- set options = (attachment.options if attachment.options is defined else attachment['options']) or {} -%}
        {%- if alias and alias | lower == (database or '') | lower and path.startswith('ducklake:') -%}
            {%- set schema = options.get('metadata_schema') or ('public' if path.startswith('ducklake:postgres') else 'main') -%}
            {{- return('"__ducklake_metadata_' ~ alias ~ '"."' ~ schema ~ '"') -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro duckdb__list_relations_without_caching(schema_relation) %}
  {%- set meta = ducklake_metadata(schema_relation.database) -%}
  {% call statement('list_relations_without_caching', fetch_result=True) -%}
    {%- if meta is none %}
    select '{{ schema_relation.database }}' as database, table_name as name,
           table_schema as schema,
           case table_type when 'VIEW' then 'view' else 'table' end as type
    from system.information_schema.tables
    where lower(table_schema) = '{{ schema_relation.schema | lower }}'
      and lower(table_catalog) = '{{ schema_relation.database | lower }}'
    {%- else %}
    select '{{ schema_relation.database }}' as database, t.table_name as name,
           s.schema_name as schema, 'table' as type
    from {{ meta }}.ducklake_table t
    join {{ meta }}.ducklake_schema s on s.schema_id = t.schema_id
    where t.end_snapshot is null and s.end_snapshot is null
      and lower(s.schema_name) = '{{ schema_relation.schema | lower }}'
    union all
    select '{{ schema_relation.database }}', v.view_name, s.schema_name, 'view'
    from {{ meta }}.ducklake_view v
    join {{ meta }}.ducklake_schema s on s.schema_id = v.schema_id
    where v.end_snapshot is null and s.end_snapshot is null
      and lower(s.schema_name) = '{{ schema_relation.schema | lower }}'
    {%- endif %}
  {%- endcall %}
  {{ return(load_result('list_relations_without_caching').table) }}
{% endmacro %}

{% macro duckdb__list_schemas(database) -%}
  {%- set meta = ducklake_metadata(database) -%}
  {% set sql %}
    {%- if meta is none %}
    select schema_name from system.information_schema.schemata
    {%- if database is not none %} where lower(catalog_name) = '{{ database | lower }}'{% endif %}
    {%- else %}
    select schema_name from {{ meta }}.ducklake_schema where end_snapshot is null
    {%- endif %}
  {% endset %}
  {{ return(run_query(sql)) }}
{%- endmacro %}
