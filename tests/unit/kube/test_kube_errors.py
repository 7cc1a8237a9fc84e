"""API answers become debugcap's own errors, once, at the boundary (debugcap.kube.errors).

Cases: each status maps to its class and keeps status, reason and the API's message; the message
names the object read back from the request path and says what to do next; a request that got
no answer is a KubeError with status 0; long API bodies are cut short.
"""

from __future__ import annotations

import json

import pytest

from debugcap import errors
from debugcap.kube import errors as kube_errors
from debugcap.kube.client import core_path, group_path


def _status(code: int, reason: str, message: str) -> str:
    return json.dumps({"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message})


@pytest.mark.parametrize(("code", "cls"), [
    (400, errors.InvalidError), (401, errors.ForbiddenError), (403, errors.ForbiddenError),
    (404, errors.NotFoundError), (409, errors.ConflictError), (422, errors.InvalidError),
    (500, errors.KubeError),
], ids=["400", "401", "403", "404", "409", "422", "500"])
def test_each_status_maps_to_its_error_class_with_status_reason_and_message(code: int,
                                                                             cls: type[errors.KubeError]) -> None:
    exc = kube_errors.from_response("GET", "/api/v1/namespaces/prod/pods/api-1", code,
                                    _status(code, "SomeReason", 'pods "api-1" is unhappy'))
    assert type(exc) is cls
    assert (exc.status, exc.reason, exc.api_message) == (code, "SomeReason", 'pods "api-1" is unhappy')


def test_not_found_names_the_object_and_how_to_list_its_kind() -> None:
    exc = kube_errors.from_response("GET", core_path("pods", "prod", "api-1"), 404,
                                    _status(404, "NotFound", 'pods "api-1" not found'))
    assert str(exc) == ('cannot get pods "api-1" in namespace "prod": pods "api-1" not found; '
                        "list them with: kubectl get pods -n prod")


def test_forbidden_exec_asks_for_create_rights_on_the_subresource() -> None:
    exc = kube_errors.from_response("GET", core_path("pods", "prod", "api-1", "exec"), 403,
                                    _status(403, "Forbidden", "no"))
    assert isinstance(exc, errors.ForbiddenError)
    assert "ask for create rights on pods/exec in namespace \"prod\"" in str(exc)
    assert "kubectl auth can-i create pods/exec -n prod" in str(exc)


def test_a_missing_crd_says_to_install_the_crds() -> None:
    path = group_path("debugcap.io", "v1alpha1", "debugcaptures", "prod")
    exc = kube_errors.from_response("GET", path, 404, _status(404, "NotFound",
                                                             "the server could not find the requested resource"))
    assert "kubectl apply -f crds/" in str(exc)


def test_cluster_scoped_and_group_paths_are_read_back_for_messages() -> None:
    assert str(kube_errors.ObjectRef.from_path(core_path("nodes", name="n1"))) == 'nodes "n1"'
    ref = kube_errors.ObjectRef.from_path(group_path("debugcap.io", "v1alpha1", "debugcaptures", "a b", "x/y",
                                                     "status"))
    assert (ref.group, ref.resource, ref.namespace, ref.name, ref.subresource) == \
        ("debugcap.io", "debugcaptures", "a%20b", "x%2Fy", "status")


def test_no_answer_is_a_kube_error_with_status_zero_naming_the_server() -> None:
    exc = kube_errors.from_transport("GET", core_path("pods", "prod"), "https://10.0.0.1:6443",
                                     ConnectionRefusedError("refused"))
    assert type(exc) is errors.KubeError and exc.status == 0
    assert "https://10.0.0.1:6443" in str(exc) and "kubectl cluster-info" in str(exc)


def test_a_long_api_message_is_cut_short() -> None:
    exc = kube_errors.from_response("PATCH", core_path("pods", "p", "x"), 422, _status(422, "Invalid", "x" * 5000))
    assert len(exc.api_message) <= errors.TEXT_ERROR_MAX_SIZE
    assert isinstance(exc, errors.InvalidError)


def test_a_body_that_is_not_a_status_falls_back_to_the_http_reason() -> None:
    exc = kube_errors.from_response("DELETE", core_path("pods", "p", "x"), 503, "<html>busy</html>",
                                    "Service Unavailable")
    assert exc.api_message == "Service Unavailable" and "cannot delete pods" in str(exc)


def test_reading_a_collection_is_named_list_as_rbac_names_it() -> None:
    exc = kube_errors.from_response("GET", group_path("debugcap.io", "v1alpha1", "debugcaptures"), 403,
                                    _status(403, "Forbidden", "no"))
    assert str(exc).startswith("cannot list debugcaptures: no;")
    assert "kubectl auth can-i list debugcaptures" in str(exc)
