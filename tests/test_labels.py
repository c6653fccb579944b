"""The label vocabularies of the batch contract (DESIGN.md, "Batch contract")."""

from affectjax import labels


def test_expressions_are_abaw_order():
    assert labels.EXPRESSIONS == ("Neutral", "Anger", "Disgust", "Fear", "Happiness",
                                  "Sadness", "Surprise", "Other")
    assert labels.NUM_EXPRESSIONS == 8


def test_aus_are_the_12_abaw_action_units_in_column_order():
    assert labels.AU_IDS == (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
    assert labels.AUS == ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23",
                          "AU24", "AU25", "AU26")
    assert labels.NUM_AUS == 12
