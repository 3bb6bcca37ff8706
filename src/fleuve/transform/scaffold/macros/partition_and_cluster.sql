{#-
  Models written for BigQuery configure `partition_by={'field': ..., 'data_type': ...,
  'granularity': ...}` and `cluster_by=[...]`. dbt-duckdb takes a list of DuckLake partition
  keys and `sorted_by`; these macros (dbt-duckdb 1.11's, with the translation added) accept
  both spellings:
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


{% macro duckdb__get_partitioned_by(relation, temporary) -%}
  {%- if temporary -%}
    {{ return(none) }}
  {%- endif -%}

  {%- set raw = config.get('partitioned_by', none) -%}
  {%- if raw is none or raw == '' -%}
    {%- set raw = config.get('partition_by', none) -%}
  {%- endif -%}
  {%- if raw is none or raw == '' -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if raw is mapping -%}
    {%- set raw = fleuve_partition_keys(raw) -%}
  {%- endif -%}

  {%- set parts = normalize_string_or_list(raw, "partitioned_by/partition_by") -%}

  {%- if parts | length == 0 -%}
    {% do exceptions.raise_compiler_error("partitioned_by/partition_by must contain at least one column") %}
  {%- endif -%}

  {%- if this is defined and config.get('materialized') in ['table', 'incremental']
      and relation.identifier and this.identifier and relation.identifier != this.identifier -%}
    {{ return(none) }}
  {%- endif -%}

  {%- if not adapter.is_ducklake(relation) -%}
    {% do adapter.warn_once(
      "partitioned_by/partition_by is only supported for DuckLake relations; ignoring for "
      ~ relation
    ) %}
    {{ return(none) }}
  {%- endif -%}

  {{ return(parts | join(', ')) }}
{%- endmacro %}


{% macro duckdb__get_sorted_by(relation, temporary) -%}
  {%- if temporary -%}
    {{ return(none) }}
  {%- endif -%}

  {%- set raw = config.get('sorted_by', none) -%}
  {%- if raw is none -%}
    {%- set raw = config.get('sort_by', none) -%}
  {%- endif -%}
  {%- if raw is none -%}
    {%- set raw = config.get('cluster_by', none) -%}
  {%- endif -%}
  {%- if raw is none -%}
    {{ return(none) }}
  {%- endif -%}

  {%- set parts = normalize_string_or_list(raw, "sorted_by/sort_by/cluster_by") -%}

  {%- if parts | length == 0 -%}
    {% do exceptions.raise_compiler_error("sorted_by/sort_by/cluster_by must contain at least one column") %}
  {%- endif -%}

  {%- if this is defined and config.get('materialized') in ['table', 'incremental']
      and relation.identifier and this.identifier and relation.identifier != this.identifier -%}
    {{ return(none) }}
  {%- endif -%}

  {%- if not adapter.is_ducklake(relation) -%}
    {% do adapter.warn_once(
      "sorted_by/sort_by/cluster_by is only supported for DuckLake relations; ignoring for "
      ~ relation
    ) %}
    {{ return(none) }}
  {%- endif -%}

  {%- set quoted = [] -%}
  {%- for col in parts -%}
    {%- set escaped = col | replace('"', '""') -%}
    {%- do quoted.append(adapter.quote(escaped)) -%}
  {%- endfor -%}
  {{ return(quoted | join(', ')) }}
{%- endmacro %}
