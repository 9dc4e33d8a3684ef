"""Lists: page/page_size offsets, keyset continuation through `page_token`, sorting and filters, once for
every list endpoint (DESIGN.md section 4).

A `page_token` carries the sort, a fingerprint of the filters and the last row's sort key and id, so the next
page is a `WHERE (key, id) > (last_key, last_id)` range scan on an index however deep it is."""

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import InstrumentedAttribute, Session

from modelyard.db.base import UTCDateTime
from modelyard.errors import BadRequest, validation_error

T = TypeVar("T")
# A first page counts the matching rows up to this many, no further (a lower bound is reported beyond it).
COUNT_CAP = 10_000

PAGING_PARAMS = ("page", "page_size", "sort", "page_token")
DEFAULT_SORTS = ("created_at", "updated_at", "name")


class Filters(BaseModel):
    """Base of each list's filter set: one optional field per query parameter."""

    model_config = ConfigDict(extra="ignore")


class NoFilters(Filters):
    pass


class Pagination(BaseModel):
    page: int
    page_size: int
    current_page_size: int
    total_pages: int
    total_results: int
    total_results_exact: bool = Field(
        default=True,
        description=f"False when more than {COUNT_CAP:,} results match: total_results (and total_pages) then stop at "
        f"{COUNT_CAP:,}, a lower bound; follow next_page_token to the end",
    )


class Page(BaseModel, Generic[T]):
    data: list[T]
    pagination: Pagination
    next_page_token: str | None = None


@dataclass
class ListQuery:
    page: int
    page_size: int
    sort: str
    page_token: str | None
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def sort_field(self) -> str:
        return self.sort.lstrip("-")

    def key(self) -> str:
        """The whole query as one string, the same for equal queries (for caches of answers)."""
        return json.dumps(
            [self.page, self.page_size, self.sort, self.page_token, self.filters], sort_keys=True, default=str
        )

    def fingerprint(self) -> str:
        blob = json.dumps(self.filters, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def list_params(
    filters: type[Filters] = NoFilters,
    *,
    sorts: Sequence[str] = DEFAULT_SORTS,
    default_sort: str = "-created_at",
) -> Callable[..., Coroutine[Any, Any, ListQuery]]:
    """A FastAPI dependency that parses paging, sorting and the given filters, and refuses (400) any query
    parameter the list does not know, naming the valid ones."""
    allowed_sorts = [s for name in sorts for s in (name, f"-{name}")]
    valid = sorted(set(PAGING_PARAMS) | set(filters.model_fields))

    async def dependency(  # async: FastAPI would hand a plain function to a thread
        request: Request,
        filter_values: Annotated[filters, Query()],  # type: ignore[valid-type]
        page: Annotated[int, Query(ge=1, description="1-based page number (ignored with page_token)")] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000, description="Results per page, 1 to 1000")] = 100,
        sort: Annotated[str, Query(description=f"One of: {', '.join(allowed_sorts)}")] = default_sort,
        page_token: Annotated[str | None, Query(description="The next_page_token of the previous page")] = None,
    ) -> ListQuery:
        unknown = sorted(set(request.query_params.keys()) - set(valid))
        if unknown:
            raise BadRequest(
                f"Unknown query parameter(s): {', '.join(unknown)}. Valid parameters: {', '.join(valid)}",
                error_code="UNKNOWN_QUERY_PARAMETER",
                solution_msg="Remove the unknown parameters or use one of the valid ones",
                detail={"unknown": unknown, "valid": valid},
            )
        if sort not in allowed_sorts:
            raise validation_error(["query", "sort"], f"Input should be one of: {', '.join(allowed_sorts)}", "enum")
        return ListQuery(
            page=page, page_size=page_size, sort=sort, page_token=page_token, filters=filter_values_of(filter_values)
        )

    _PLAIN[dependency] = (filters, frozenset(allowed_sorts), default_sort, frozenset(valid))
    return dependency


def filter_values_of(filters: Filters) -> dict[str, Any]:
    """The filters a list was given (None and empty lists left out), as ListQuery.filters holds them."""
    values = filters.model_dump(exclude_none=True)
    return {k: v for k, v in values.items() if v != []}


# What each list_params dependency takes: its filters, sorts, default sort and every valid parameter.
_PLAIN: dict[Callable[..., Any], tuple[type[Filters], frozenset[str], str, frozenset[str]]] = {}


def plain_list_query(request: Request, dependency: Callable[..., Any]) -> ListQuery | None:
    """The ListQuery that `dependency` (made by `list_params`) makes of the request's query string, for a fast path
    (kit.routing.fast_path); None for anything but the plain case (a parameter given twice, an unknown one, a number
    that is not plain digits or is out of range, a sort not offered, filters that do not validate), which the
    dependency then answers, its 400s and 422s included."""
    filters, sorts, default_sort, valid = _PLAIN[dependency]
    given = request.query_params
    if len(given.multi_items()) != len(given) or not valid.issuperset(given.keys()):
        return None
    values = dict(given)
    page = _plain_int(values.pop("page", "1"), 1, None)
    page_size = _plain_int(values.pop("page_size", "100"), 1, 1000)
    sort = values.pop("sort", default_sort)
    page_token = values.pop("page_token", None)
    if page is None or page_size is None or sort not in sorts:
        return None
    try:
        chosen = filters.model_validate(values)
    except ValueError:  # pydantic's ValidationError, or a single value for a list filter
        return None
    return ListQuery(page=page, page_size=page_size, sort=sort, page_token=page_token, filters=filter_values_of(chosen))


def _plain_int(text: str, low: int, high: int | None) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    value = int(text)
    return value if value >= low and (high is None or value <= high) else None


def _encode_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decode_value(column: InstrumentedAttribute[Any] | sa.ColumnElement[Any], value: Any) -> Any:
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise ValueError("bad timestamp")
        return datetime.fromisoformat(value)
    return value


def _bad_token(reason: str) -> BadRequest:
    return BadRequest(
        f"Invalid page_token: {reason}",
        error_code="INVALID_PAGE_TOKEN",
        solution_msg="Pass the next_page_token of a previous answer unchanged, with the same sort and filters",
    )


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise _bad_token("it is not a token this server issued") from exc
    if not isinstance(data, dict) or not {"s", "f", "k", "i", "p", "t"} <= data.keys():
        raise _bad_token("it is not a token this server issued")
    return data


def paginate(
    session: Session,
    stmt: sa.Select[Any],
    query: ListQuery,
    *,
    columns: Mapping[str, InstrumentedAttribute[Any] | sa.ColumnElement[Any]],
    tiebreak: InstrumentedAttribute[Any] | sa.ColumnElement[Any],
    rows: bool = False,
) -> tuple[list[Any], Pagination, str | None]:
    """Run `stmt` (already filtered) for one page. `columns` maps each sort name to its column; `tiebreak` is
    a unique column that orders rows with equal sort keys. `total_results` is counted on the first page and carried
    in the token after that (so it is the count as of the first page). The page holds ORM objects, or with `rows`
    the statement's Core rows (a select of table columns)."""
    column = columns[query.sort_field]
    order = (column.desc(), tiebreak.desc()) if query.descending else (column.asc(), tiebreak.asc())
    page_stmt = stmt.order_by(*order)
    page_number = query.page
    total: int | None = None
    if query.page_token:
        token = _decode_token(query.page_token)
        if token["s"] != query.sort:
            raise _bad_token(f"it was issued for sort={token['s']}, not sort={query.sort}")
        if token["f"] != query.fingerprint():
            raise _bad_token("it was issued for other filters")
        try:
            last = _decode_value(column, token["k"])
            page_number = int(token["p"]) + 1
            total = int(token["t"])
        except (ValueError, TypeError) as exc:
            raise _bad_token("it is damaged") from exc
        key = sa.tuple_(column, tiebreak)
        page_stmt = page_stmt.where(key < (last, token["i"]) if query.descending else key > (last, token["i"]))
    else:
        page_stmt = page_stmt.offset((query.page - 1) * query.page_size)
    result = session.execute(page_stmt.limit(query.page_size + 1))
    found: list[Any] = list(result.all() if rows else result.scalars().all())  # fetchall: one call, not one per row
    has_more = len(found) > query.page_size
    found = found[: query.page_size]
    if total is None:
        # Counted once, on the first page; continuations carry it in the token, so a deep page costs no scan. A
        # first page that is not full is the whole answer; otherwise the count stops at COUNT_CAP + 1 rows, so no
        # list reads a whole table (-1 in the token stands for "more than COUNT_CAP").
        if not has_more and (found or page_number == 1):
            total = (page_number - 1) * query.page_size + len(found)
        else:
            capped = (
                stmt.order_by(None)
                .with_only_columns(sa.literal(1), maintain_column_froms=True)
                .limit(COUNT_CAP + 1)
                .subquery()
            )
            counted = session.scalar(sa.select(sa.func.count()).select_from(capped)) or 0
            total = counted if counted <= COUNT_CAP else -1
    next_token = None
    if has_more and found:
        last_row = found[-1]
        payload = {
            "s": query.sort,
            "f": query.fingerprint(),
            "k": _encode_value(getattr(last_row, str(column.key))),
            "i": getattr(last_row, str(tiebreak.key)),
            "p": page_number,
            "t": total,
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        next_token = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    exact = total >= 0
    shown = total if exact else COUNT_CAP
    pagination = Pagination(
        page=page_number,
        page_size=query.page_size,
        current_page_size=len(found),
        total_pages=math.ceil(shown / query.page_size) if shown else 0,
        total_results=shown,
        total_results_exact=exact,
    )
    return found, pagination, next_token


ListParams = Annotated[ListQuery, Depends(list_params())]
