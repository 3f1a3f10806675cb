"""What a training run will write, checked before it trains: minutes of training are never
lost to a path that cannot be written."""

from __future__ import annotations

from mnistkit.files.records import record_path
from mnistkit.files.saving import OutputError, check_folder, check_targets
from mnistkit.train.checkpoint import Checkpoint
from mnistkit.train.config import TrainingConfig
from mnistkit.train.run_record import check_record_is_ours, curves_path
from mnistkit.write.formats import check_export_targets


def check_outputs(config: TrainingConfig) -> None:
    """OutputError unless every file the run writes can be written whole: the model, its
    record (no other model's), curves, checkpoint, exports, and the TensorBoard folder."""
    checkpoint = Checkpoint(config.output)
    check_targets([config.output, record_path(config.output), checkpoint.variables_path,
                   checkpoint.state_path, *filter(None, [curves_path(config)])])
    check_record_is_ours(config.output)
    check_export_targets(config.output, config.export)
    if config.tensorboard:
        try:
            check_folder(config.tensorboard)
        except OutputError as error:
            raise OutputError(f"--tensorboard {error}") from None
