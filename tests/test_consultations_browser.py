"""In real browsers, in Traditional Chinese: a nurse asks, a pharmacist claims and asks for
information, the clinic answers, the pharmacist answers with two guidance lines, a second
pharmacist checks, the nurse acknowledges; the patient sheet prints on one page in both
languages."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from clinic.models import Consultation

pytestmark = pytest.mark.browser

NURSE, PHARMACIST, PHARMACIST_TWO = (
    "nurse@jinzhou.demo",
    "pharmacist@hub.demo",
    "pharmacist2@hub.demo",
)
SHOTS = Path(__file__).resolve().parent.parent / "instance" / "screenshots"


def in_traditional(page):
    page.get_by_role("button", name="繁體中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant-HK")
    return page


def test_a_drug_question_from_asking_to_acknowledgement_in_traditional_chinese(
    app, new_page, demo_data, make_patient
):
    app.config["REFERRAL_POLL_SECONDS"] = 1
    patient = make_patient(
        chinese_name="鄭家樂", english_name="CHENG, Ka Lok", medications="Amlodipine 5 mg daily",
        preferred_language="zh_Hant_HK",
    )  # fmt: skip
    nurse = in_traditional(new_page(NURSE))

    # The nurse asks from the patient: the record's medications are there; typing the drug
    # offers the catalogue's entry, which fills in where it is registered.
    nurse.goto(f"/consultations/new?patient={patient.id}")
    expect(nurse.get_by_label("現用藥物")).to_have_value("Amlodipine 5 mg daily")
    nurse.get_by_label("藥物", exact=True).press_sequentially("Amlo")
    match = nurse.locator("#drug-matches button").first
    expect(match).to_be_visible()
    match.click()
    expect(nurse.get_by_label("藥物", exact=True)).to_have_value(re.compile("Amlodipine"))
    nurse.get_by_label("查詢類別").select_option(label="同等藥物或替代品")
    nurse.get_by_label("詳情").fill("病人由深圳帶來「络活喜」5 mg，香港有沒有同等藥物？")
    nurse.get_by_label("當日").check()
    nurse.get_by_role("button", name="繼續").click()
    expect(nurse.locator("#similar-answers")).to_contain_text("相近的以往回覆")
    nurse.get_by_role("button", name="發出查詢").click()
    nurse.wait_for_url(re.compile(r"/consultations/\d+$"))
    consultation_id = int(nurse.url.rsplit("/", 1)[1])
    expect(nurse.locator("#consultation-detail")).to_contain_text("等待藥劑師")

    # The pharmacist claims it inline from the queue, then asks the clinic a question.
    pharmacist = in_traditional(new_page(PHARMACIST))
    pharmacist.goto("/consultations/")
    row = pharmacist.locator(f"#consultation-{consultation_id}")
    row.get_by_role("button", name="認領").click()
    expect(row).to_contain_text("已認領")
    pharmacist.goto(f"/consultations/{consultation_id}")
    pharmacist.get_by_role("link", name="向診所查詢").click()
    pharmacist.get_by_label("給診所的問題").fill("病人今日血壓多少？")
    pharmacist.get_by_role("button", name="向診所查詢").click()
    expect(pharmacist.locator("#consultation-detail")).to_contain_text("要求補充資料")

    # The nurse's open page shows the question by itself; she answers it.
    detail = nurse.locator("#consultation-detail")
    expect(detail).to_contain_text("病人今日血壓多少？")
    detail.get_by_role("link", name="回覆藥劑師").click()
    nurse.get_by_label("給藥劑師的回覆").fill("150/95 mmHg")
    nurse.get_by_role("button", name="回覆藥劑師").click()
    expect(nurse.locator("#consultation-detail")).to_contain_text("150/95 mmHg")

    # The pharmacist answers with two guidance lines of approved phrases and a note.
    pharmacist.goto(f"/consultations/{consultation_id}")
    expect(pharmacist.locator("#consultation-detail")).to_contain_text("150/95 mmHg")
    pharmacist.get_by_role("link", name="撰寫回覆").click()
    first, second = pharmacist.locator("#line-1"), pharmacist.locator("#line-2")
    first.get_by_label("藥物").fill("Amlodipine")
    for kind in ("劑量", "次數", "服用時間"):
        first.get_by_label(kind).select_option(index=1)
    second.get_by_label("藥物").fill("Amlodipine")
    second.get_by_label("注意事項").select_option(index=1)
    pharmacist.get_by_label("附註（以你撰寫的語言保留）").fill("Norvasc 5 mg 與络活喜成分相同。")
    pharmacist.get_by_role("button", name="簽署並發出").click()
    expect(pharmacist.locator("#consultation-detail")).to_contain_text("等待覆核")

    # A second pharmacist checks it; only then does the clinic see the answer.
    checker = in_traditional(new_page(PHARMACIST_TWO))
    checker.goto(f"/consultations/{consultation_id}")
    checker.get_by_role("button", name="已覆核：發給診所").click()
    expect(checker.locator("#consultation-detail")).to_contain_text("已回覆")
    answer = nurse.locator("#answer")
    expect(answer).to_contain_text("Norvasc 5 mg")
    expect(answer.locator("table.guidance tr")).to_have_count(3)  # header + two lines
    nurse.locator("#consultation-detail").get_by_role("button", name="確認收到").click()
    expect(nurse.locator("#consultation-detail")).to_contain_text("已確認收到")
    assert Consultation.get_by_id(consultation_id).state == "acknowledged"

    # The sheet: both languages, one printed page.
    nurse.goto(f"/consultations/{consultation_id}/sheet")
    sheet = nurse.locator("article.sheet")
    expect(sheet).to_contain_text("用藥指示")
    expect(sheet).to_contain_text("Medication advice")
    expect(sheet.locator("table.guidance tr")).to_have_count(2)
    nurse.emulate_media(media="print")
    SHOTS.mkdir(parents=True, exist_ok=True)
    nurse.screenshot(path=str(SHOTS / "consultation-sheet.png"), full_page=True)
    pdf = nurse.pdf(prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
