"""Games shipped with imitgame: one module each, every one a subclass of an imitgame base class."""
