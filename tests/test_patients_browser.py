"""In a real browser, in Traditional Chinese: register with a mistake, fix it, find, check in."""

import re

import pytest
from playwright.sync_api import expect

from clinic import demo
from clinic.models import IdentityDocument, Organisation, Patient, Visit

pytestmark = pytest.mark.browser


def test_nurse_registers_in_chinese_fixes_a_mistake_finds_and_checks_in(new_page, demo_data):
    page = new_page("nurse@jinzhou.demo")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_load_state()
    page.get_by_role("navigation", name="主選單").get_by_role("link", name="病人").click()
    page.get_by_role("link", name="病人登記").click()
    page.wait_for_url("**/patients/new")

    page.get_by_label("中文姓名").fill("鍾大衛")
    page.get_by_label("英文姓名").fill("CHUNG, Tai Wai")
    page.get_by_label("性別").select_option("M")
    page.get_by_label("出生日期").fill("1980-02-14")
    page.get_by_label("居住地").select_option("hk")
    # Another document row is added in place (with htmx; a plain submit without JavaScript).
    outside = page.get_by_label("性別").element_handle()  # not swapped by any field check
    page.get_by_role("button", name="新增另一份證件").click()
    page.locator("#documents-1-number").wait_for()
    assert outside.evaluate("select => select.isConnected")  # only the documents were swapped
    assert page.get_by_label("中文姓名").input_value() == "鍾大衛"
    page.locator("#documents-0-number").fill("G123456(1)")
    page.get_by_label("電話", exact=True).fill("9876 5432")
    # Leaving the field checks it on the server; only that field comes back.
    page.get_by_label("地址").click()
    expect(page.get_by_text("檢查碼與號碼不符：請再核對證件上的號碼。")).to_be_visible()
    page.get_by_label("地址").fill("香港太古城第三座 12 樓 B 室")
    page.get_by_role("button", name="登記病人").click()
    page.get_by_role("alert").wait_for()  # the form came back (422) with its message
    assert page.get_by_text("檢查碼與號碼不符：請再核對證件上的號碼。").is_visible()
    assert Patient.select().where(Patient.chinese_name == "鍾大衛").count() == 0

    # Only the wrong character is corrected; everything else is still there.
    assert page.get_by_label("中文姓名").input_value() == "鍾大衛"
    assert page.get_by_label("地址").input_value() == "香港太古城第三座 12 樓 B 室"
    page.locator("#documents-0-number").fill("G123456(A)")
    page.get_by_role("button", name="登記病人").click()
    page.wait_for_url(re.compile(r"/patients/\d+$"))
    assert page.get_by_text("病人已登記。").is_visible()
    assert page.get_by_text("G123456(A)").is_visible()
    patient = Patient.get(Patient.chinese_name == "鍾大衛")
    assert (patient.phone, patient.address) == ("+85298765432", "香港太古城第三座 12 樓 B 室")
    assert IdentityDocument.get(IdentityDocument.patient == patient).number == "G123456A"

    # Found by part of the name typed in Simplified characters, as the user types.
    page.get_by_role("navigation", name="主選單").get_by_role("link", name="病人").click()
    page.get_by_label("搜尋病人").press_sequentially("钟大", delay=50)
    result = page.locator("#search-results").get_by_role("link", name="鍾大衛 CHUNG, Tai Wai")
    result.wait_for()
    assert "/patients/new" not in page.url
    row = page.locator("#search-results tr", has_text="鍾大衛")
    row.get_by_role("button", name="報到").click()
    page.wait_for_url("**/patients/queue")
    assert page.get_by_text("鍾大衛 CHUNG, Tai Wai 已報到。").is_visible()
    queue_row = page.locator("#queue tr", has_text="鍾大衛")
    assert queue_row.get_by_text("候診中").is_visible()
    assert Visit.get(Visit.patient == patient).state == "waiting"

    # The doctor is called in without a page load: the queue fragment is swapped in place.
    queue_row.get_by_role("button", name="叫號應診").click()
    page.locator("#queue tr", has_text="鍾大衛").get_by_text("應診中").wait_for()
    assert Visit.get(Visit.patient == patient).state == "with_doctor"


def test_look_alike_warning_appears_while_typing_and_can_be_overridden(new_page, demo_data):
    clinic = Organisation.by_name(demo.CLINIC_A)
    existing = Patient.get(Patient.chinese_name == "陳大文", Patient.clinic == clinic)
    page = new_page("nurse@jinzhou.demo")
    page.goto("/patients/new")
    page.get_by_label("Chinese name").fill("陈大文")
    page.get_by_label("Date of birth").fill(existing.date_of_birth.isoformat())
    page.get_by_label("Sex").select_option("M")
    warning = page.get_by_role("alert").filter(has_text="same name and date of birth")
    warning.wait_for()
    assert warning.get_by_role("link", name="陳大文 CHAN, Tai Man").is_visible()
    page.get_by_label("Residency").select_option("mainland")
    page.get_by_label("Document type").select_option("exit_entry")
    page.get_by_label("Document number").fill("CA1234567")
    page.get_by_label("This is a different person: register anyway").check()
    page.get_by_role("button", name="Register patient").click()
    page.get_by_text("Patient registered.").wait_for()
    assert Patient.select().where(Patient.chinese_name == "陈大文").count() == 1


def test_withdrawing_a_consent_asks_first(new_page, demo_data, make_patient):
    from clinic.models import Consent

    from conftest import user

    patient = make_patient()
    consent = Consent.create(
        patient=patient, scope="cross_border", recorded_by=user("nurse@jinzhou.demo")
    )
    page = new_page("nurse@jinzhou.demo")
    page.goto(f"/patients/{patient.id}")
    confirm = page.get_by_role("button", name="Withdraw consent")
    assert not confirm.is_visible()
    page.get_by_text("Record withdrawal").click()  # opens the confirm step, withdraws nothing
    assert Consent.get_by_id(consent.id).active
    confirm.click()
    page.locator("#consents .pill.danger", has_text="Withdrawn").wait_for()
    assert not Consent.get_by_id(consent.id).active
