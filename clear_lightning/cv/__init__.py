"""The face-identification track (benchmark.md §8): embedding network, enrolment, shadow models, U-LIRA and U-MIA."""
