"""``python -m affectjax.bench``: see `affectjax.bench.core`."""

from affectjax.bench.core import main

if __name__ == "__main__":
    main()
