"""The HTML pages (Jinja2 templates; plain ES modules do the rest in the browser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

#: (path, title, template, built): pages of capabilities not built yet say so plainly.
PAGES = [
    ("create", "Create", "create.html", True),
    ("breed", "Breed", "breed.html", True),
    ("explore", "Explore", "explore.html", True),
    ("gallery", "Gallery", "gallery.html", True),
    ("rate", "Rate", "rate.html", True),
    ("train", "Train", "train.html", True),
    ("jobs", "Jobs", "jobs.html", True),
    ("stylize", "Stylize", "stylize.html", True),
    ("music", "Music", "music.html", True),
    ("poetry", "Poetry", "poetry.html", True),
    ("crossmodal", "Cross-modal", "crossmodal.html", True),
]


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/create", status_code=307)


def _page(name: str, title: str, template: str) -> Callable[[Request], HTMLResponse]:
    def render(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, template,
                                          {"page": name, "title": title, "pages": PAGES})

    render.__name__ = f"page_{name}"
    return render


for _name, _title, _template, _ in PAGES:
    router.add_api_route(f"/{_name}", _page(_name, _title, _template), methods=["GET"],
                         response_class=HTMLResponse)


@router.get("/gallery/{item_id}", response_class=HTMLResponse)
def gallery_item(item_id: int, request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "item.html", {"page": "gallery",
                                                             "title": f"Image {item_id}",
                                                             "pages": PAGES,
                                                             "item_id": item_id})
