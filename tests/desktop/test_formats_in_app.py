"""The real app under Xvfb with the new kinds: a MuData file's modalities on the home
window (each opens a viewer of its own), a Zarr store folder chosen in the real folder
dialog, and recent entries for stores and MuData files."""

from __future__ import annotations

from tests.desktop.gui import type_into_dialog, wait_visible, xdotool
from tests.helpers import wait_for


def test_a_mudata_file_opens_its_expression_modality_and_offers_the_others(
        launch, app_env, format_cases):
    path = format_cases["h5mu-citeseq-rna"].path
    app = launch(str(path))
    viewer = app.wait_window("viewer:citeseq-rna", "the rna modality's viewer")
    assert viewer["title"] == "CITE-seq (rna)"
    app.wait_home_ready()
    buttons = wait_for(lambda: app.eval("home", "[...document.querySelectorAll("
                                                "'#open-list li[data-id=\"citeseq-rna\"] button.modality')]"
                                                ".map(b => [b.textContent, b.className])"),
                       30, what="the modality buttons of the open MuData dataset")
    assert buttons == [["rna", "modality current"], ["prot", "modality"]]
    app.eval("home", "document.querySelector('#open-list button.modality:not(.current)').click()")
    prot = app.wait_window("viewer:citeseq-prot", "the prot modality's viewer")
    assert prot["title"] == "CITE-seq (prot)"
    wait_for(lambda: app.eval("viewer:citeseq-prot",
                              "document.documentElement.dataset.viewerState") == "ready",
             90, what="the prot viewer ready")
    recent = wait_for(lambda: app.eval("home", "[...document.querySelectorAll('#recent li')]"
                                               ".map(li => [li.dataset.path, li.className, "
                                               "[...li.querySelectorAll('button.modality')]"
                                               ".map(b => b.textContent)])"),
                      20, what="the MuData file in the recent list")
    assert recent == [[str(path), "", ["rna", "prot"]]]


def test_a_zarr_folder_chosen_in_the_folder_dialog_opens_and_is_remembered(
        launch, app_env, format_cases):
    store = format_cases["zarr-v3-folder"].path
    app = launch()
    app.wait_home_ready()
    home = wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid)
    xdotool(app_env, "windowfocus", "--sync", home)
    xdotool(app_env, "key", "ctrl+shift+o")  # the home window's Open Zarr folder…
    dialog = wait_visible(app_env, "^Open folder$")
    type_into_dialog(app_env, dialog, str(store))
    viewer = app.wait_window("viewer:rich-v3", "the store's viewer window")
    # the address the window shows now: the viewer's own state, and no token
    assert "/?dataset=rich-v3" in viewer["url"] and "token=" not in viewer["url"]
    wait_for(lambda: app.eval("viewer:rich-v3", "document.documentElement.dataset.viewerState")
             == "ready", 90, what="the viewer ready")
    rows = wait_for(lambda: app.eval("home", "[...document.querySelectorAll('#recent li')]"
                                             ".map(li => [li.dataset.path, li.className])"),
                    20, what="the store in the recent list")
    assert rows == [[str(store), ""]]  # a folder, and not "missing"
