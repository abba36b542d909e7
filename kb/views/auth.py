"""Sign in and out, the profile (display name, password, API tokens), user admin."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from kb.auth import database, public, role_required, safe_next
from kb.db import ROLES
from kb.users import (
    UserError,
    authenticate,
    create_token,
    create_user,
    list_tokens,
    list_users,
    new_password,
    revoke_token,
    update_user,
)

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    error = None
    if request.method == "POST":
        try:
            user = authenticate(database(), request.form.get("username", ""),
                                request.form.get("password", ""), request.remote_addr or "")
        except UserError as exc:
            error = str(exc)
        else:
            login_user(user)
            if user.must_change_password:
                flash("Choose your own password now: the one you used was temporary.")
                return redirect(url_for("auth.profile"))
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@role_required("agent")
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@role_required("agent")
def profile():
    new_token = None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "profile":
                update_user(database(), current_user.username,
                            display_name=request.form.get("display_name", "").strip()
                            or current_user.username,
                            email=request.form.get("email", "").strip())
                flash("Profile saved. Your emails now sign off with this name.")
            elif action == "password":
                authenticate(database(), current_user.username,
                             request.form.get("current", ""), request.remote_addr or "")
                if request.form.get("new") != request.form.get("confirm"):
                    raise UserError("The two new passwords differ; type them again.")
                update_user(database(), current_user.username, password=request.form["new"],
                            must_change_password=False)
                flash("Password changed.")
            elif action == "token":
                new_token = create_token(database(), current_user.username,
                                         request.form.get("label", ""))
            elif action == "revoke":
                revoke_token(database(), current_user.id, int(request.form.get("token_id", 0)))
                flash("Token revoked.")
        except (UserError, ValueError) as exc:
            flash(str(exc), "error")
        if new_token is None:
            return redirect(url_for("auth.profile"))
    return render_template("profile.html", tokens=list_tokens(database(), current_user.id),
                           new_token=new_token)


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required("admin")
def users():
    shown_password = None
    if request.method == "POST":
        action = request.form.get("action")
        name = request.form.get("username", "")
        try:
            if action == "create":
                shown_password = new_password()
                create_user(database(), name, shown_password,
                            role=request.form.get("role", "agent"),
                            display_name=request.form.get("display_name", ""),
                            email=request.form.get("email", ""), must_change=True)
                flash(f"Created {name}. Give them this one-time password: {shown_password}")
            elif action == "role":
                update_user(database(), name, role=request.form.get("role", "agent"))
                flash(f"{name} is now {request.form.get('role')}.")
            elif action == "disable":
                update_user(database(), name, active=False)
                flash(f"{name} can no longer sign in.")
            elif action == "enable":
                update_user(database(), name, active=True)
                flash(f"{name} can sign in again.")
            elif action == "reset":
                shown_password = new_password()
                update_user(database(), name, password=shown_password, must_change_password=True)
                flash(f"New one-time password for {name}: {shown_password}")
        except UserError as exc:
            flash(str(exc), "error")
        return redirect(url_for("auth.users"))
    return render_template("users.html", users=list_users(database()), roles=ROLES)
