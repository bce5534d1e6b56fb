"""The wallet's pages, one router per concern, and its small JSON API."""
