"""``python -m affectjax.bench``: see `affectjax.bench.cli`."""

from affectjax.bench.cli import main

if __name__ == "__main__":
    main()
