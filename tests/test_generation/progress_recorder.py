"""tqdm as a recorder, for the sampling tests that count progress."""


class Bar:
    """tqdm as a recorder: each bar made is in ``Bar.made`` (reset it per
    test) with its keyword arguments, updates and postfixes."""
    made = []

    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.postfix = kwargs, [], []
        Bar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)
