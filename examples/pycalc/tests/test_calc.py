import unittest

from calc import mean, median


class MeanTest(unittest.TestCase):
    def test_mean_of_integers(self) -> None:
        self.assertEqual(mean([1, 2, 3, 4]), 2.5)

    def test_mean_of_empty_list(self) -> None:
        with self.assertRaises(ValueError):
            mean([])


class MedianTest(unittest.TestCase):
    def test_median_odd_length(self) -> None:
        self.assertEqual(median([5, 1, 3]), 3)

    def test_median_even_length(self) -> None:
        self.assertEqual(median([4, 1, 3, 2]), 2.5)


if __name__ == "__main__":
    unittest.main()
