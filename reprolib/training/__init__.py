"""The single training loop of reprolib and its parts.

* :func:`train` -- train one :class:`~reprolib.config.ExperimentConfig`, write its run record (:mod:`.loop`);
* :mod:`.build` -- a config's loss, encoder, data and model, built and checked before any data is read;
* :mod:`.losses` -- ``rate_mse``, ``final_ce``, ``seq_nll``; :mod:`.schedules` -- optimisers and lr schedules;
* :mod:`.checkpoint` -- per-epoch resumable checkpoints; :mod:`.toy` -- a tiny dataset/encoder/model to try it;
* :mod:`.cli` -- ``reprolib run``.
"""

from reprolib.training.build import check_config, resolve_device
from reprolib.training.loop import NonFiniteLossError, TimeLimitReached, load_selected_model, train

__all__ = ["train", "load_selected_model", "check_config", "resolve_device", "NonFiniteLossError",
           "TimeLimitReached"]
