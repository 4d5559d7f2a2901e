"""Fine-tuning: the training recipe, its data-parallel launch, the loss diagnostics and W&B."""
