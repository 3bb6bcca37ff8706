{#-
  Models written for BigQuery configure `partition_by={'field': ..., 'data_type': ...,
  'granularity': ...}` and `cluster_by=[...]`. dbt-duckdb takes a list of DuckLake partition
  keys and `sorted_by`; these wrappers translate the first spelling, then hand over to
  dbt-duckdb's own macros:
    partition_by={'field': 'order_date', 'data_type': 'date'}  ->  year, month, day of order_date
    (granularity 'year', 'month', 'day' (BigQuery's default) or 'hour')
    cluster_by=['customer_id']                                 ->  sorted_by: each file's rows
    are written in customer_id order, so that a filter on it skips most row groups
-#}

{% macro fleuve_partition_keys(spec) -%}
  {#- DuckLake partition keys for a BigQuery-style partition_by mapping. -#}
  {%- set field = spec.get('field') -%}
  {%- if not field -%}
    {% do exceptions.raise_compiler_error(
      "partition_by needs a 'field': write partition_by={'field': 'order_date', "
      ~ "'data_type': 'date'} or partitioned_by=['year(order_date)']") %}
  {%- endif -%}
  {%- set data_type = (spec.get('data_type') or 'date') | lower -%}
  {%- if data_type not in ['date', 'timestamp', 'datetime'] or spec.get('range') -%}
    {% do exceptions.raise_compiler_error(
      "partition_by on '" ~ field ~ "' with data_type '" ~ data_type ~ "': DuckLake partitions "
      ~ "by a date or timestamp's year, month, day or hour, or by a column's values; write "
      ~ "partitioned_by=['" ~ field ~ "'] to partition by its values") %}
  {%- endif -%}
  {%- set levels = {
    'year': ['year'],
    'month': ['year', 'month'],
    'day': ['year', 'month', 'day'],
    'hour': ['year', 'month', 'day', 'hour'],
  } -%}
  {%- set granularity = (spec.get('granularity') or 'day') | lower -%}
  {%- if granularity not in levels or (granularity == 'hour' and data_type == 'date') -%}
    {% do exceptions.raise_compiler_error(
      "partition_by granularity '" ~ granularity ~ "' on '" ~ field ~ "': use 'year', 'month' "
      ~ "or 'day'" ~ (" (or 'hour' for a timestamp)" if data_type == 'date' else " or 'hour'")) %}
  {%- endif -%}
  {%- set keys = [] -%}
  {%- for level in levels[granularity] -%}
    {%- do keys.append(level ~ '(' ~ adapter.quote(field) ~ ')') -%}
  {%- endfor -%}
  {{ return(keys) }}
{%- endmacro %}


{% macro fleuve_final_ducklake_target(relation, temporary) -%}
  {#- True where dbt-duckdb applies partitioning and sorting: the model's own DuckLake table,
      not a temporary or staging relation. -#}
  {%- if temporary or not adapter.is_ducklake(relation) -%}
    {{ return(false) }}
  {%- endif -%}
  {{ return(not (this is defined and relation.identifier and this.identifier
                 and relation.identifier != this.identifier)) }}
{%- endmacro %}


{% macro duckdb__get_partitioned_by(relation, temporary) -%}
  {%- set spec = config.get('partition_by', none) -%}
  {%- if spec is mapping and not config.get('partitioned_by', none) -%}
    {%- set keys = fleuve_partition_keys(spec) -%}
    {{ return(keys | join(', ') if fleuve_final_ducklake_target(relation, temporary) else none) }}
  {%- endif -%}
  {{ return(dbt.duckdb__get_partitioned_by(relation, temporary)) }}
{%- endmacro %}


{% macro duckdb__get_sorted_by(relation, temporary) -%}
  {%- set columns = config.get('cluster_by', none) -%}
  {%- if columns and config.get('sorted_by', none) is none and config.get('sort_by', none) is none -%}
    {%- if not fleuve_final_ducklake_target(relation, temporary) -%}
      {{ return(none) }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for column in ([columns] if columns is string else columns) -%}
      {%- do quoted.append(adapter.quote(column | replace('"', '""'))) -%}
    {%- endfor -%}
    {{ return(quoted | join(', ')) }}
  {%- endif -%}
  {{ return(dbt.duckdb__get_sorted_by(relation, temporary)) }}
{%- endmacro %}
