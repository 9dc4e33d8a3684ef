"""Lists as iterators: a `Pager` fetches one page at a time and follows `next_page_token` (keyset pages, constant
time however deep) with the same sort and filters, until the server says there is no next page."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.client._http import HTTPTransport


@dataclass(frozen=True)
class Page:
    """One answer of a list endpoint."""

    data: list[dict[str, Any]]
    pagination: dict[str, Any]
    next_page_token: str | None


class Pager(Iterator[dict[str, Any]]):
    """An iterator over every item of a list, fetching pages lazily (nothing is sent before the first `next()`).

    `pages()` walks the raw pages instead, from the first; `total_results` is the count the first page reported.
    """

    def __init__(
        self, transport: HTTPTransport, path: str, params: Mapping[str, Any], page_size: int | None = None
    ) -> None:
        self._transport = transport
        self._path = path
        self._params = {k: v for k, v in params.items() if v is not None}
        if page_size is not None:
            self._params["page_size"] = page_size
        self._buffer: deque[dict[str, Any]] = deque()
        self._walk: Iterator[Page] | None = None
        self._first: Page | None = None

    def _fetch(self, page_token: str | None) -> Page:
        params = dict(self._params)
        if page_token is not None:
            params["page_token"] = page_token
        body = self._transport.request("GET", self._path, params=params)
        data = body.get("data")
        return Page(
            data=list(data) if isinstance(data, list) else [],
            pagination=dict(body.get("pagination") or {}),
            next_page_token=body.get("next_page_token") or None,
        )

    def pages(self) -> Iterator[Page]:
        """Every page from the first, fetched as the iteration reaches it."""
        page = self._fetch(None)
        if self._first is None:
            self._first = page
        yield page
        while page.next_page_token:
            page = self._fetch(page.next_page_token)
            yield page

    @property
    def first_page(self) -> Page:
        if self._first is None:
            self._first = self._fetch(None)
        return self._first

    @property
    def total_results(self) -> int:
        return int(self.first_page.pagination.get("total_results", 0))

    def __iter__(self) -> Pager:
        return self

    def __next__(self) -> dict[str, Any]:
        while not self._buffer:
            if self._walk is None:
                self._walk = self._walk_from_first()
            page = next(self._walk)  # StopIteration ends this iterator too
            self._buffer.extend(page.data)
        return self._buffer.popleft()

    def _walk_from_first(self) -> Iterator[Page]:
        page = self.first_page
        yield page
        while page.next_page_token:
            page = self._fetch(page.next_page_token)
            yield page
