"""Why a training run stopped, as an `eqx.Enumeration` (as diffrax's `RESULTS`)."""

import equinox as eqx


class StopReason(eqx.Enumeration):
    """Why training stopped (as diffrax's `RESULTS`): `TrainStepInfo.failure` inside the jitted
    step, `TrainResult.stop` after `fit`. The messages begin the `stop_reason` strings."""

    completed = ""
    nonfinite_loss = "non-finite loss"
    nonfinite_gradient = "non-finite gradient"
    nonfinite_update = "non-finite update"
    collapsed = (
        "collapsed sample batch (its zero variance is an artefact of sampling, not a sign of "
        "convergence)"
    )
    callback = "stopped by a callback"
    time_limit = "stopped at the wall-time limit"
