"""Demo catalogue of a hub: common drugs in three scripts and approved instruction phrases.

Names: the generic name in English, well-known English brand names, the name used in Hong
Kong (Traditional) and on the mainland (Simplified). Every drug here is a registered product
in Hong Kong and marketed on the mainland; registration numbers are left empty (never made
up), and none is marked 港澳藥械通 (these are all marketed on the mainland already).
"""

from clinic.db import utcnow
from clinic.models import Organisation, User
from clinic.models.drugs import Drug, DrugSearchKey
from clinic.models.patients import english_key
from clinic.models.phrases import APPROVED, Phrase

# generic name, brand names, Traditional (HK), Simplified (mainland), notes
DRUGS = (
    ("Paracetamol", "Panadol", "撲熱息痛", "对乙酰氨基酚", "Adults: at most 4 g a day."),
    ("Ibuprofen", "Brufen, Nurofen", "布洛芬", "布洛芬", ""),
    ("Aspirin", "Cardiprin", "阿士匹靈", "阿司匹林", ""),
    ("Diclofenac", "Voltaren", "雙氯芬酸", "双氯芬酸", ""),
    ("Amoxicillin", "Amoxil", "阿莫西林", "阿莫西林", ""),
    ("Amoxicillin and clavulanic acid", "Augmentin", "阿莫西林克拉維酸", "阿莫西林克拉维酸钾", ""),
    ("Azithromycin", "Zithromax", "阿奇黴素", "阿奇霉素", ""),
    ("Ciprofloxacin", "Ciproxin", "環丙沙星", "环丙沙星", ""),
    ("Oseltamivir", "Tamiflu", "奧司他韋", "奥司他韦", ""),
    ("Metformin", "Glucophage", "二甲雙胍", "二甲双胍", ""),
    ("Gliclazide", "Diamicron", "格列齊特", "格列齐特", ""),
    ("Insulin glargine", "Lantus", "甘精胰島素", "甘精胰岛素", "Keep unopened pens cold."),
    ("Amlodipine", "Norvasc", "氨氯地平", "氨氯地平", ""),
    ("Losartan", "Cozaar", "氯沙坦", "氯沙坦", ""),
    ("Lisinopril", "Zestril", "賴諾普利", "赖诺普利", ""),
    ("Metoprolol", "Betaloc", "美托洛爾", "美托洛尔", ""),
    ("Atorvastatin", "Lipitor", "阿托伐他汀", "阿托伐他汀", ""),
    ("Simvastatin", "Zocor", "辛伐他汀", "辛伐他汀", ""),
    ("Clopidogrel", "Plavix", "氯吡格雷", "氯吡格雷", ""),
    ("Warfarin", "Marevan", "華法林", "华法林", "Needs INR monitoring."),
    ("Levothyroxine", "Eltroxin, Euthyrox", "左甲狀腺素", "左甲状腺素", ""),
    ("Prednisolone", "", "潑尼松龍", "泼尼松龙", ""),
    ("Omeprazole", "Losec", "奧美拉唑", "奥美拉唑", ""),
    ("Famotidine", "Pepcid", "法莫替丁", "法莫替丁", ""),
    ("Domperidone", "Motilium", "多潘立酮", "多潘立酮", ""),
    ("Loperamide", "Imodium", "洛哌丁胺", "洛哌丁胺", ""),
    ("Loratadine", "Clarityne", "氯雷他定", "氯雷他定", ""),
    ("Cetirizine", "Zyrtec", "西替利嗪", "西替利嗪", ""),
    ("Chlorphenamine", "Piriton", "氯苯那敏", "氯苯那敏", ""),
    ("Salbutamol", "Ventolin", "沙丁胺醇", "沙丁胺醇", ""),
    ("Montelukast", "Singulair", "孟魯司特", "孟鲁司特", ""),
    ("Sertraline", "Zoloft", "舍曲林", "舍曲林", ""),
)

# kind: (English, Traditional with Hong Kong usage, Simplified with mainland usage)
PHRASES = {
    "dose": (
        ("Take 1 tablet", "每次服用一粒", "每次服用1片"),
        ("Take 2 tablets", "每次服用兩粒", "每次服用2片"),
        ("Take half a tablet", "每次服用半粒", "每次服用半片"),
        ("Take 1 capsule", "每次服用一粒膠囊", "每次服用1粒胶囊"),
        ("Take 2 capsules", "每次服用兩粒膠囊", "每次服用2粒胶囊"),
        ("Take 5 mL", "每次服用5毫升", "每次服用5毫升"),
        ("Take 10 mL", "每次服用10毫升", "每次服用10毫升"),
        ("Inhale 1 puff", "每次吸入一下", "每次吸入1揿"),
        ("Inhale 2 puffs", "每次吸入兩下", "每次吸入2揿"),
        ("Apply a thin layer", "塗上薄薄一層", "涂抹薄薄一层"),
        ("1 drop in each eye", "每眼滴一滴", "每眼滴1滴"),
        ("Inject the dose your doctor prescribed", "按醫生處方的劑量注射", "按医嘱剂量注射"),
    ),
    "frequency": (
        ("Once a day", "每日一次", "每日1次"),
        ("Twice a day", "每日兩次", "每日2次"),
        ("Three times a day", "每日三次", "每日3次"),
        ("Four times a day", "每日四次", "每日4次"),
        ("Every 8 hours", "每八小時一次", "每8小时1次"),
        ("Every 12 hours", "每十二小時一次", "每12小时1次"),
        ("Every 4 to 6 hours when needed", "有需要時每四至六小時一次", "必要时每4～6小时1次"),
        ("Once a week", "每星期一次", "每周1次"),
        ("Every other day", "隔日一次", "隔日1次"),
        ("Only when needed", "有需要時才服用", "必要时服用"),
    ),
    "route": (
        ("By mouth", "口服", "口服"),
        (
            "Swallow whole: do not chew or crush",
            "整粒吞服，切勿咀嚼或壓碎",
            "整片吞服，不要咀嚼或压碎",
        ),
        ("Chew before swallowing", "咀嚼後吞服", "嚼碎后吞服"),
        ("Dissolve in water before taking", "溶於水後服用", "溶于水后服用"),
        ("Under the tongue", "舌下含服", "舌下含服"),
        ("Inhale by mouth", "經口吸入", "经口吸入"),
        ("On the skin", "外用，塗於皮膚", "外用，涂于皮肤"),
        ("Into the eye", "滴眼", "滴眼"),
        ("Inject under the skin", "皮下注射", "皮下注射"),
    ),
    "timing": (
        ("Before food", "飯前服用", "饭前服用"),
        ("After food", "飯後服用", "饭后服用"),
        ("With food", "與食物同服", "随餐服用"),
        (
            "On an empty stomach, 30 minutes before breakfast",
            "空腹服用，早餐前三十分鐘",
            "空腹服用，早餐前30分钟",
        ),
        ("At bedtime", "睡前服用", "睡前服用"),
        ("In the morning", "早上服用", "早晨服用"),
        ("In the evening", "晚上服用", "晚上服用"),
        ("At the same time every day", "每日同一時間服用", "每天同一时间服用"),
        ("With a full glass of water", "以一杯清水送服", "用一整杯水送服"),
    ),
    "duration": (
        ("For 3 days", "連續服用三日", "连续服用3天"),
        ("For 5 days", "連續服用五日", "连续服用5天"),
        ("For 7 days", "連續服用七日", "连续服用7天"),
        ("For 14 days", "連續服用十四日", "连续服用14天"),
        (
            "Finish the course, even if you feel better",
            "即使病徵好轉，亦須完成整個療程",
            "即使症状好转，也要服完整个疗程",
        ),
        (
            "Long term: do not stop without asking your doctor",
            "長期服用，未經醫生同意切勿停藥",
            "长期服用，未经医生同意不要停药",
        ),
        ("Until the symptoms go away", "直至病徵消失", "直至症状消失"),
        (
            "At most 3 days: see a doctor if you are not better",
            "最多服用三日，如未見好轉請求診",
            "最多服用3天，如无好转请就医",
        ),
    ),
    "warning": (
        (
            "May cause drowsiness: do not drive or operate machinery",
            "可能引致睡意，服藥後切勿駕駛或操作機器",
            "可能引起嗜睡，服药后不要驾驶或操作机器",
        ),
        ("Avoid alcohol", "服藥期間避免飲酒", "服药期间避免饮酒"),
        (
            "Do not take more than 8 tablets in 24 hours",
            "二十四小時內切勿服用多於八粒",
            "24小时内不可服用超过8片",
        ),
        (
            "Do not take other medicines that contain paracetamol",
            "切勿同時服用其他含撲熱息痛的藥物",
            "不要同时服用其他含对乙酰氨基酚的药物",
        ),
        (
            "Stop and see a doctor at once if a rash, swelling or difficulty breathing appears",
            "如出現皮疹、腫脹或呼吸困難，請立即停藥並求診",
            "如出现皮疹、肿胀或呼吸困难，请立即停药并就医",
        ),
        ("May upset the stomach", "可能引致腸胃不適", "可能引起胃肠不适"),
        ("Avoid grapefruit juice", "避免飲用西柚汁", "避免饮用葡萄柚汁"),
        (
            "Tell your doctor if you are pregnant or breastfeeding",
            "如懷孕或正在餵哺母乳，請告知醫生",
            "如怀孕或正在哺乳，请告知医生",
        ),
        (
            "Keep out of the reach of children",
            "請存放於兒童接觸不到的地方",
            "请存放在儿童接触不到的地方",
        ),
        (
            "Keep in the refrigerator (2 to 8 °C); do not freeze",
            "存放於雪櫃（攝氏2至8度），切勿冷凍",
            "冷藏保存（2～8 °C），不可冷冻",
        ),
        (
            "May cause bleeding: tell your doctor about black stools or unusual bruises",
            "可能引致出血：如大便呈黑色或出現不尋常瘀傷，請告知醫生",
            "可能引起出血：如出现黑便或异常瘀青，请告知医生",
        ),
        ("Rinse your mouth after each use", "每次使用後請漱口", "每次使用后请漱口"),
        ("Do not stop suddenly", "切勿突然停藥", "不要突然停药"),
        (
            "Can lower blood sugar: carry sweets and know the signs of a hypo",
            "可能引致血糖過低：請隨身攜帶糖果，並留意低血糖徵狀",
            "可能引起低血糖：请随身携带糖果，并留意低血糖症状",
        ),
    ),
}

# Shown as work in progress: a newer wording waiting for approval, and a new draft.
REVISED = ("dose", "Take 1 tablet", ("Take one tablet", "每次服用一粒", "每次服用1片"))
NEW_DRAFT = ("warning", ("Do not crush", "切勿壓碎", "不要压碎"))


def load(hub_name: str, writer_email: str, approver_email: str) -> None:
    """The hub's catalogue and phrases: written by one pharmacist, approved by another.

    Inserted in bulk (a handful of statements: the demo loads before most tests); the work in
    progress at the end goes through the model's moves like any pharmacist's."""
    hub = Organisation.by_name(hub_name)
    writer = User.get(User.email == writer_email, User.organisation == hub)
    approver = User.get(User.email == approver_email, User.organisation == hub)
    drugs = [
        Drug(
            hub=hub, generic_name=generic, brand_names=brands, name_hant=hant, name_hans=hans,
            hk_registered=True, mainland_marketed=True, notes=notes,
            generic_key=english_key(generic),
        )
        for generic, brands, hant, hans, notes in DRUGS
    ]  # fmt: skip
    Drug.insert_many([d.__data__ for d in drugs]).execute()
    ids = dict(Drug.select(Drug.generic_name, Drug.id).where(Drug.hub == hub).tuples())
    keys = [
        {"drug": ids[d.generic_name], "hub": hub.id, "key": key}
        for d in drugs
        for key in sorted(d.search_keys())
    ]
    DrugSearchKey.insert_many(keys).execute()
    now = utcnow()
    Phrase.insert_many(
        {
            "hub": hub.id, "kind": kind, "text_en": text_en, "text_hant": text_hant,
            "text_hans": text_hans, "state": APPROVED, "written_by": writer.id,
            "written_at": now, "approved_by": approver.id, "approved_at": now,
        }
        for kind, texts in PHRASES.items()
        for text_en, text_hant, text_hans in texts
    ).execute()  # fmt: skip
    Phrase.update(lineage=Phrase.id).where(Phrase.lineage.is_null()).execute()
    kind, text_en, texts = REVISED
    Phrase.get(Phrase.hub == hub, Phrase.kind == kind, Phrase.text_en == text_en).revise(
        writer, *texts
    )
    kind, texts = NEW_DRAFT
    Phrase.write(approver, kind, *texts)
