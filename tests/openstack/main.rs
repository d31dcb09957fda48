//! The OpenStack provider end to end.
