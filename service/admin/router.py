"""Route: POST /admin/model/reload (write key): switch to the published model now.

The service also looks for a newly published model on its own every
``R2REC_MODEL_WATCH_S`` seconds (`service.runtime.Runtime.switch_to_published`); this call
is for a publisher that wants the switch at once, e.g. the retrain job's last step.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from service.deps import RuntimeDep
from service.errors import RATE_LIMITED, UNAUTHORIZED
from service.security import WriteKey

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["admin"], dependencies=[WriteKey], responses={**UNAUTHORIZED, **RATE_LIMITED}
)


class ReloadResponse(BaseModel):
    switched: bool = Field(description="True if a newly published model was swapped in")
    model: str = Field(description="The model version answering from now on")


@router.post("/admin/model/reload", response_model=ReloadResponse)
async def reload_model(runtime: RuntimeDep) -> ReloadResponse:
    """Load the published model if it is not the one serving and switch to it; requests
    in flight finish on the model they started with. Nothing changes with the vLLM backend
    or a fixed R2REC_MODEL_PATH (restart vLLM to serve a new model there)."""
    try:
        switched = await runtime.switch_to_published()
    except Exception as err:  # the new model does not load: the old one keeps serving
        log.exception("published model failed to load")
        raise HTTPException(
            status_code=503,
            detail="the published model could not be loaded; "
            f"still serving {runtime.model_version}",
        ) from err
    return ReloadResponse(switched=switched, model=runtime.model_version)
