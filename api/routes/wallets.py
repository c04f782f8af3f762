"""GET /api/wallets/{address}/category-pnl: a wallet's PnL by category, from the marts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api import marts
from api.deps import AUTH, ERRORS, NOT_FOUND, Address, State
from api.models import WalletCategoryPnl
from api.responses import RedactedJSONResponse

router = APIRouter(tags=["wallets"], dependencies=AUTH, responses={**ERRORS, **NOT_FOUND})


@router.get("/api/wallets/{address}/category-pnl", response_model=WalletCategoryPnl)
async def wallet_category_pnl(state: State, address: Address):
    """The wallet's realized PnL by canonical category (exact USD amounts as strings)."""
    wallet = address.lower()
    kept, rows = state.answers.get(("category-pnl", wallet))
    if not kept:
        rows = await state.reader.run(marts.category_pnl, state.settings, wallet, state.api.retry_after_s)
        state.answers.put(("category-pnl", wallet), rows)
    if not rows:
        raise HTTPException(404, f"wallet {wallet} has no positions in the marts")
    return RedactedJSONResponse({"wallet": wallet, "total": marts.total(rows), "categories": rows})
