"""The web layer: the app factory, its blueprints, live updates and serving.

Everything here asks :class:`kboard.provider.DataProvider` for data; nothing below this
package imports it.
"""
