"""The examples in the docstrings of affectjax.losses and affectjax.schedules run as written."""

import doctest

import pytest

from affectjax import schedules
from affectjax.losses import classification, consensus, emotieffnet, landmarks, regression
from affectjax.losses import weights


@pytest.mark.parametrize(
    "module", [classification, consensus, emotieffnet, landmarks, regression, weights,
               schedules],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
