"""The face-identification track (SPEC §8): embedding network, enrolment, shadow models, U-LIRA and U-MIA."""
