"""The universal redemption mall: catalog, prices in any program, redemption, cancellation."""
