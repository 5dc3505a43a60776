"""electra-keras: ELECTRA pretraining, fine-tuning, export and serving with Keras 3.

`import electra_keras` registers every model, layer and optimizer with
`keras.saving`, so `keras.saving.load_model("classifier.keras")` works after it.
When the process is the `electra-keras` command, TensorFlow is imported first
with its start-up lines hidden (see `electra_keras.quiet_startup`). Unless the
environment sets `TF_CPU_ALLOCATOR_USE_BFC`, it also asks TensorFlow for its
pooling CPU allocator, and unless it sets `MALLOC_ARENA_MAX`, it caps glibc's
malloc arenas at two (see `electra_keras.cpu_memory`).
"""

__version__ = "0.1.0"


def _quiet_cli_startup() -> None:
    from electra_keras.quiet_startup import quiet_cli_startup

    quiet_cli_startup()


def _register() -> None:
    import electra_keras.finetuning.optimizer  # noqa: F401
    import electra_keras.models  # noqa: F401
    import electra_keras.training.optimizer  # noqa: F401


def _pool_cpu_memory() -> None:
    from electra_keras.cpu_memory import limit_malloc_arenas, use_pooling_allocator

    limit_malloc_arenas()
    use_pooling_allocator()


_pool_cpu_memory()
_quiet_cli_startup()
_register()
