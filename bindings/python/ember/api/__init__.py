"""ember.api — user-facing helpers around XCS.

Only :mod:`ember.api.decorators` exists so far, and it is empty until the
orchestration issue (see that module's docstring).
"""
