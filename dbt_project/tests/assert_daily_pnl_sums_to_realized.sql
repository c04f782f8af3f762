{{ config(tags = ['whole_history']) }}

-- The daily identity: a wallet's realized PnL summed over its days equals its realized PnL
-- summed over its categories, exactly. Returns every wallet where the two differ (or that
-- only one side has a nonzero total for).
with daily as (

    select wallet, toInt128(sum(realized_pnl)) as daily_total
    from {{ ref('fct_wallet_daily_pnl') }}
    group by wallet

),

categories as (

    select wallet, toInt128(sum(realized_pnl)) as category_total
    from {{ ref('fct_wallet_category_pnl') }}
    group by wallet

),

compared as (

    select
        coalesce(daily.wallet, categories.wallet)       as wallet,
        ifNull(daily.daily_total, toInt128(0))          as daily_total,
        ifNull(categories.category_total, toInt128(0))  as category_total
    from daily
    full outer join categories on daily.wallet = categories.wallet

)

select * from compared
where daily_total != category_total
