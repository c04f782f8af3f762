{#-
    Polymarket's average-cost fold (docs/pnl.md) over `events`, an array of
    (filled_at, fill_id, is_buy, quantity Int128, price Int128) tuples already sorted by
    (timestamp, id) (see sorted_events), starting from `init`, a tuple (amount, avg_price,
    trading_pnl, bought) of Int128. Returns the final (amount, avg_price, trading_pnl, bought).
      BUY  q at p:  avg = (avg*amount + p*q) / (amount + q); amount += q; bought += q
      SELL q at p:  adj = min(q, amount); pnl += adj*(p - avg) / 10^6; amount -= adj
    intDiv truncates toward zero, as the subgraph's BigInt division does.
-#}
{% macro average_cost_fold(events, init) -%}
    arrayFold(
        (acc, e) -> {{ average_cost_step('acc', 'e') }},
        {{ events }},
        {{ init }}
    )
{%- endmacro %}

{#- One event `e` applied to the state `acc` (the rule above, written once). -#}
{% macro average_cost_step(acc, e) -%}
    if(
        {{ e }}.3,
        if({{ e }}.4 > 0,
           ({{ acc }}.1 + {{ e }}.4,
            intDiv({{ acc }}.2 * {{ acc }}.1 + {{ e }}.5 * {{ e }}.4, {{ acc }}.1 + {{ e }}.4),
            {{ acc }}.3,
            {{ acc }}.4 + {{ e }}.4),
           {{ acc }}),
        ({{ acc }}.1 - least({{ e }}.4, {{ acc }}.1),
         {{ acc }}.2,
         {{ acc }}.3 + intDiv(least({{ e }}.4, {{ acc }}.1) * ({{ e }}.5 - {{ acc }}.2), {{ unit() }}),
         {{ acc }}.4)
    )
{%- endmacro %}

{#-
    A key's fills (from a credited-fills relation aliased `alias`, inside a GROUP BY) as the
    fold's event tuples in (timestamp, id) order. Select it once under an alias and pass the
    alias to average_cost_fold: its last element is also the key's last event, which is
    far cheaper than a separate max() over (timestamp, id) tuples.
-#}
{% macro sorted_events(alias) -%}
    arraySort(groupArray(({{ alias }}.filled_at, {{ alias }}.fill_id, {{ alias }}.side = 'BUY',
                          toInt128({{ alias }}.quantity), toInt128({{ alias }}.price))))
{%- endmacro %}

{#- The zero state. -#}
{% macro empty_position() -%}
    (toInt128(0), toInt128(0), toInt128(0), toInt128(0))
{%- endmacro %}

{#-
    The fold with a checkpoint at the end of every day, in one pass over a key's `events`
    (sorted, as sorted_events gives them), starting from `init`. `starts_day` is an array of
    flags, true for an event that begins a new day (not the first event): before such an
    event the state so far (the previous day's end) is appended. Returns the tuple
    (the last day's end state, [init, end of day 1, ..., end of the day before the last]);
    the caller appends the first to the second (under an alias, so the fold runs once) to
    get every day's checkpoint: element i + 1 is day i's, element i the state it started
    from. Only day ends are appended, so the array copied per event is one checkpoint per
    day so far, not one per event.
-#}
{% macro average_cost_day_fold(events, starts_day, init) -%}
    arrayFold(
        (acc, e, starts) -> (
            {{ average_cost_step('acc.1', 'e') }},
            if(starts, arrayPushBack(acc.2, acc.1), acc.2)
        ),
        {{ events }},
        {{ starts_day }},
        ({{ init }}, [{{ init }}])
    )
{%- endmacro %}
