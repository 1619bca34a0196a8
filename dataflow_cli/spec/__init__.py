"""Spec loading (with locations), JSON-Schema validation and static checks."""
