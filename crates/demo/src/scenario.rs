//! The story, measure by measure. Dates are business dates in China Standard Time; amounts
//! and lags are drawn from the seed within bounds that keep every outcome as written (each
//! bound says why it holds).

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::builder::{day, Builder};
use crate::cast::*;
use crate::DemoStep;

/// Yearly budget of each measure with money (yuan).
const BUDGETS: [(&str, i64); 8] = [
    ("M2", 30_000_000),
    ("M4", 60_000_000),
    ("M5", 20_000_000),
    ("M6", 40_000_000),
    ("M7", 30_000_000),
    ("M8", 20_000_000),
    ("M9", 10_000_000),
    ("M10", 3_000_000),
];

const SUPPORT_NOTES: [&str; 5] = [
    "材料齐全,符合申报条件,建议支持",
    "经现场核查,项目真实,建议按申报金额支持",
    "专家评审通过,建议支持",
    "已核对合同、发票及付款凭证,符合政策规定,建议支持",
    "经部门联审,符合条件,建议予以支持",
];

pub(crate) fn build(seed: u64) -> Vec<DemoStep> {
    let mut b = Builder::new(seed);
    budgets(&mut b);
    compute_vouchers(&mut b);
    core_technology(&mut b);
    model_scenarios(&mut b);
    platforms(&mut b);
    smart_scenes(&mut b);
    enterprises(&mut b);
    industrial_parks(&mut b);
    events(&mut b);
    b.finish()
}

/// One application and the officers who handle it.
struct Case {
    firm: FirmSpec,
    provision: &'static str,
    year: i32,
    /// Requested amount; `None` for a fixed award stated by the catalogue.
    amount: Option<i64>,
    basis: Value,
    reviewer: Staff,
    approver: Staff,
}

/// Submits on `date` and gets a positive review 5–20 days later; returns the id and the
/// review date.
fn reviewed(b: &mut Builder, date: NaiveDate, case: &Case) -> (String, NaiveDate) {
    let id = b.submit(
        date,
        &case.firm,
        case.provision,
        case.year,
        case.amount,
        case.basis.clone(),
        None,
    );
    let reviewed_on = b.after(date, 5, 20);
    let note = b.pick(&SUPPORT_NOTES);
    b.review(reviewed_on, &id, case.reviewer, true, note);
    (id, reviewed_on)
}

/// Submitted, reviewed, and approved at `approved_yuan` 3–15 days after the review.
fn approved(
    b: &mut Builder,
    date: NaiveDate,
    case: &Case,
    approved_yuan: i64,
) -> (String, NaiveDate) {
    let (id, reviewed_on) = reviewed(b, date, case);
    let approved_on = b.after(reviewed_on, 3, 15);
    b.approve(approved_on, &id, case.approver, approved_yuan, None);
    (id, approved_on)
}

/// The whole path: approved, then paid in full 5–20 days later. At most 59 days from
/// submission to confirmation.
fn granted(
    b: &mut Builder,
    date: NaiveDate,
    case: &Case,
    approved_yuan: i64,
) -> (String, NaiveDate) {
    let (id, approved_on) = approved(b, date, case, approved_yuan);
    let ordered_on = b.after(approved_on, 5, 20);
    let paid_on = b.pay(ordered_on, &id, approved_yuan);
    (id, paid_on)
}

/// A one-time award on recognition (fixed amount): the applicant states the amount or leaves
/// it to the catalogue.
#[allow(clippy::too_many_arguments)]
fn one_time_award(
    b: &mut Builder,
    date: NaiveDate,
    firm: &FirmSpec,
    provision: &'static str,
    year: i32,
    fixed_yuan: i64,
    recognised: NaiveDate,
    approver: Staff,
) -> (String, NaiveDate) {
    let stated = b.chance(0.5).then_some(fixed_yuan);
    let case = Case {
        firm: *firm,
        provision,
        year,
        amount: stated,
        basis: recognition(recognised),
        reviewer: REV_GXJ,
        approver,
    };
    granted(b, date, &case, fixed_yuan)
}

fn recognition(date: NaiveDate) -> Value {
    json!({"recognition_date": date.format("%Y-%m-%d").to_string()})
}

fn budgets(b: &mut Builder) {
    // The 2024 budget is set up once the policy is out (2024-05-22); later years in January.
    for (year, date) in [
        (2024, day(2024, 6, 3)),
        (2025, day(2025, 1, 6)),
        (2026, day(2026, 1, 5)),
    ] {
        for (measure, amount) in BUDGETS {
            b.allocate(date, measure, year, amount);
        }
    }
    // 年中追加: compute vouchers ran hot in 2025.
    b.allocate(day(2025, 7, 1), "M2", 2025, 10_000_000);
    // The key lab's programme runs past the policy: its 2027 tranche needs a 2027 budget.
    b.allocate(day(2026, 12, 22), "M6", 2027, 15_000_000);
}

// -------------------------------------------------------------------------------------------
// M2 算力券

fn voucher_basis(b: &mut Builder, year: i32, contract: i64, provincial: bool) -> Value {
    let contract_id = format!("SLHT-{year}-{:05}", b.amount(1, 99_999, 1));
    json!({
        "contract_amount": crate::builder::yuan(contract),
        "contract_id": contract_id,
        "provincial_voucher": provincial,
    })
}

fn voucher_case(
    b: &mut Builder,
    firm: &FirmSpec,
    year: i32,
    contract: i64,
    amount: i64,
    provincial: bool,
) -> Case {
    let basis = voucher_basis(b, year, contract, provincial);
    let reviewer = b.pick(&[REV_DSJ, REV_GXJ]);
    let approver = b.pick(&[APPR_GXJ_ZHOU, APPR_GXJ_FENG, APPR_DSJ]);
    Case {
        firm: *firm,
        provision: "M2.compute_voucher",
        year,
        amount: Some(amount),
        basis,
        reviewer,
        approver,
    }
}

/// A voucher of at most 20% of a contract of 0.5–4.5 million: at most 900,000, under the
/// firm's yearly cap of 1,000,000 on its own.
fn ordinary_voucher(b: &mut Builder, firm: &FirmSpec, year: i32) -> Case {
    let contract = b.amount(500_000, 4_500_000, 10_000);
    let full_rate = contract / 5;
    let amount = if b.chance(0.7) {
        full_rate
    } else {
        // Some firms claim a round figure under the maximum.
        (full_rate / 10_000 * 10_000).max(10_000)
    };
    let provincial = b.chance(0.3);
    voucher_case(b, firm, year, contract, amount, provincial)
}

fn compute_vouchers(b: &mut Builder) {
    let mut pool = vec![
        TIANSHU,
        ZHONGYUAN_ZN,
        XINGTU,
        HUIYI,
        YUSUAN,
        ZHIXING,
        QIMING,
        SHUZHI_NONGYE,
        YUFENG,
        BOXUE,
        WENLV,
        LIANHANG,
        ANDUN,
        SHENTONG,
        LVCHENG,
        HUIYAN,
        LINGXI,
        LANGRUN,
        YUANQI,
        HANGGANG,
        ZHONGMOU,
        MINGMOU,
    ];
    b.shuffle(&mut pool);
    // Each pool firm claims at most one voucher a year, so no one nears the yearly cap by
    // chance: 2024 takes 0–9, 2025 8–17, 2026 14–21 and 0–1, the open year-end claims 3–6.
    let mut yearly: Vec<(i32, Vec<FirmSpec>, NaiveDate, NaiveDate)> = vec![
        (
            2024,
            pool[0..10].to_vec(),
            day(2024, 6, 12),
            day(2024, 11, 20),
        ),
        (
            2025,
            pool[8..18].to_vec(),
            day(2025, 2, 17),
            day(2025, 11, 10),
        ),
        (
            2026,
            pool[14..22].to_vec(),
            day(2026, 2, 16),
            day(2026, 10, 15),
        ),
    ];
    yearly[2].1.extend_from_slice(&pool[0..2]);
    // 云智算 claims every year; 商都数据 comes back in 2026 with a proper contract.
    yearly[0].1.push(YUNZHISUAN);
    yearly[2].1.push(YUNZHISUAN);
    yearly[2].1.push(SHANGDU);
    for (year, firms, from, to) in yearly {
        for firm in firms {
            let date = b.between(from, to);
            let case = ordinary_voucher(b, &firm, year);
            let amount = case.amount.unwrap_or_default();
            granted(b, date, &case, amount);
        }
    }

    // 2024: a claim over 20% of the contract is refused; the firm corrects it and is paid.
    let date = b.between(day(2024, 7, 1), day(2024, 7, 20));
    let contract = b.amount(1_200_000, 2_400_000, 10_000);
    let over = contract / 5 + b.amount(2_000, 60_000, 1_000);
    let case = voucher_case(b, &ZHIGU, 2024, contract, over, false);
    b.submit(
        date,
        &case.firm,
        case.provision,
        case.year,
        case.amount,
        case.basis.clone(),
        Some("exceeds_rate"),
    );
    let corrected = Case {
        amount: Some(contract / 5),
        ..case
    };
    let resubmitted = b.after(date, 3, 10);
    granted(b, resubmitted, &corrected, contract / 5);

    // 2024: a compute provider asks for vouchers on its own data centre (自建自用除外).
    let date = b.between(day(2024, 8, 5), day(2024, 8, 30));
    let contract = b.amount(2_000_000, 6_000_000, 10_000);
    let mut basis = voucher_basis(b, 2024, contract, false);
    if let Some(object) = basis.as_object_mut() {
        object.insert("self_built".to_string(), json!(true));
    }
    b.submit(
        date,
        &SONGYUE,
        "M2.compute_voucher",
        2024,
        Some(contract / 5),
        basis,
        Some("excluded_self_built"),
    );

    // 2025: 云智算 (a provincial-voucher holder) reaches the 1,000,000 yearly cap in two
    // claims; a third claim that year is refused.
    let first_on = b.between(day(2025, 3, 3), day(2025, 3, 20));
    let first_contract = b.amount(2_500_000, 3_500_000, 10_000);
    let first = first_contract / 5;
    let case = voucher_case(b, &YUNZHISUAN, 2025, first_contract, first, true);
    granted(b, first_on, &case, first);
    let second_on = b.between(day(2025, 5, 12), day(2025, 6, 10));
    let second = 1_000_000 - first;
    let case = voucher_case(b, &YUNZHISUAN, 2025, second * 5, second, true);
    granted(b, second_on, &case, second);
    let third_on = b.between(day(2025, 8, 18), day(2025, 9, 12));
    let third = b.amount(100_000, 300_000, 10_000);
    let basis = voucher_basis(b, 2025, third * 5, true);
    b.submit(
        third_on,
        &YUNZHISUAN,
        "M2.compute_voucher",
        2025,
        Some(third),
        basis,
        Some("exceeds_firm_annual_cap"),
    );

    // 2025: a related-party contract: the reviewer advises against, the approver rejects.
    let date = b.between(day(2025, 4, 7), day(2025, 5, 15));
    let case = ordinary_voucher(b, &SHANGDU, 2025);
    let id = b.submit(
        date,
        &case.firm,
        case.provision,
        case.year,
        case.amount,
        case.basis.clone(),
        None,
    );
    let reviewed_on = b.after(date, 5, 15);
    b.review(
        reviewed_on,
        &id,
        REV_DSJ,
        false,
        "合同相对方为本企业关联公司,不属于向第三方算力服务商购买算力,建议不予支持",
    );
    let rejected_on = b.after(reviewed_on, 3, 10);
    b.reject(
        rejected_on,
        &id,
        APPR_GXJ_ZHOU,
        "经审核,该合同属关联交易,不符合算力券补助条件",
    );

    // Year-end 2026: claims still in the review queue; provincial-voucher holders go first.
    for (index, firm) in pool[3..7].iter().enumerate() {
        let date = b.between(day(2026, 11, 9), day(2026, 12, 18));
        let contract = b.amount(500_000, 4_500_000, 10_000);
        let provincial = match index {
            0 => false,
            3 => true,
            _ => b.chance(0.5),
        };
        let basis = voucher_basis(b, 2026, contract, provincial);
        b.submit(
            date,
            firm,
            "M2.compute_voucher",
            2026,
            Some(contract / 5),
            basis,
            None,
        );
    }
}

// -------------------------------------------------------------------------------------------
// M4 关键核心技术攻关

fn project(id: &str) -> Value {
    json!({"project_id": id})
}

fn core_technology(b: &mut Builder) {
    // 2024: a major project (不低于1000万元), paid 60% on approval and 40% the next spring.
    let date = b.between(day(2024, 7, 8), day(2024, 7, 26));
    let amount = b.amount(12_000_000, 15_000_000, 100_000);
    let case = Case {
        firm: TIANSHU,
        provision: "M4.major_project",
        year: 2024,
        amount: Some(amount),
        basis: project("ZZKJ-2024-ZD-001"),
        reviewer: REV_KJJ,
        approver: APPR_KJJ,
    };
    let (id, approved_on) = approved(b, date, &case, amount);
    let first = amount * 6 / 10;
    let ordered_on = b.after(approved_on, 7, 20);
    b.pay(ordered_on, &id, first);
    let second_on = b.between(day(2025, 4, 1), day(2025, 4, 30));
    b.pay(second_on, &id, amount - first);

    // 2024: support below the 10 million floor is not a major project.
    let date = b.between(day(2024, 9, 2), day(2024, 9, 27));
    let amount = b.amount(6_000_000, 9_500_000, 100_000);
    b.submit(
        date,
        &LANGRUN,
        "M4.major_project",
        2024,
        Some(amount),
        project("ZZKJ-2024-ZD-007"),
        Some("below_minimum"),
    );

    // 2025: 一事一议. The approver tries before the city government has endorsed it and is
    // refused; after the endorsement the approval goes through.
    let date = b.between(day(2025, 3, 3), day(2025, 3, 14));
    let amount = b.amount(25_000_000, 35_000_000, 1_000_000);
    let id = b.submit(
        date,
        &XINDONG,
        "M4.case_by_case",
        2025,
        Some(amount),
        project("ZZKJ-2025-YSYY-001"),
        None,
    );
    let reviewed_on = b.after(date, 7, 14);
    b.review(
        reviewed_on,
        &id,
        REV_KJJ,
        true,
        "属特别重大项目,建议按“一事一议”方式提请市政府研究",
    );
    let early = b.after(reviewed_on, 2, 5);
    b.approve(early, &id, APPR_KJJ, amount, Some("missing_endorsement"));
    let endorsed_on = b.after(early, 7, 15);
    b.endorse(
        endorsed_on,
        &id,
        "经市政府常务会议研究,同意按“一事一议”方式给予支持",
    );
    let approved_on = b.after(endorsed_on, 2, 6);
    b.approve(approved_on, &id, APPR_KJJ, amount, None);
    let half = amount / 2;
    let ordered_on = b.after(approved_on, 7, 15);
    b.pay(ordered_on, &id, half);
    let rest_on = b.between(day(2025, 11, 3), day(2025, 11, 28));
    b.pay(rest_on, &id, amount - half);

    // 2025: a second major project, paid in one.
    let date = b.between(day(2025, 5, 6), day(2025, 6, 13));
    let amount = b.amount(10_000_000, 14_000_000, 100_000);
    let case = Case {
        firm: YUFENG,
        provision: "M4.major_project",
        year: 2025,
        amount: Some(amount),
        basis: project("ZZKJ-2025-ZD-003"),
        reviewer: REV_KJJ,
        approver: APPR_KJJ,
    };
    granted(b, date, &case, amount);

    // 2026: approved, first 60% paid; the rest waits for acceptance (stays committed).
    let date = b.between(day(2026, 4, 6), day(2026, 5, 15));
    let amount = b.amount(10_000_000, 13_000_000, 100_000);
    let case = Case {
        firm: HUIYAN,
        provision: "M4.major_project",
        year: 2026,
        amount: Some(amount),
        basis: project("ZZKJ-2026-ZD-002"),
        reviewer: REV_KJJ,
        approver: APPR_KJJ,
    };
    let (id, approved_on) = approved(b, date, &case, amount);
    let ordered_on = b.after(approved_on, 7, 20);
    b.pay(ordered_on, &id, amount * 6 / 10);

    // Late 2026: reviewed, waiting for the approver.
    let date = b.between(day(2026, 11, 2), day(2026, 11, 20));
    let amount = b.amount(15_000_000, 20_000_000, 100_000);
    let case = Case {
        firm: TIANSHU,
        provision: "M4.major_project",
        year: 2026,
        amount: Some(amount),
        basis: project("ZZKJ-2026-ZD-005"),
        reviewer: REV_KJJ,
        approver: APPR_KJJ,
    };
    reviewed(b, date, &case);
}

// -------------------------------------------------------------------------------------------
// M5 大模型应用场景

fn scenario_basis(id: &str) -> Value {
    json!({"scenario_id": id})
}

fn model_scenarios(b: &mut Builder) {
    // 2024: the city's government-services model, phase one.
    let date = b.between(day(2024, 8, 5), day(2024, 8, 30));
    let phase_one = b.amount(3_000_000, 4_500_000, 100_000);
    let case = Case {
        firm: TIANSHU,
        provision: "M5.model_scenario",
        year: 2024,
        amount: Some(phase_one),
        basis: scenario_basis("ZZ-M5-2024-001"),
        reviewer: REV_DSJ,
        approver: APPR_FGW,
    };
    granted(b, date, &case, phase_one);

    // 2025: phase two of the same scenario would pass its 5,000,000 cap; the firm asks for
    // what is left and gets it.
    let date = b.between(day(2025, 4, 7), day(2025, 4, 25));
    let left = 5_000_000 - phase_one;
    let over = left + b.amount(100_000, 1_000_000, 100_000);
    b.submit(
        date,
        &TIANSHU,
        "M5.model_scenario",
        2025,
        Some(over),
        scenario_basis("ZZ-M5-2024-001"),
        Some("exceeds_provision_cap"),
    );
    let case = Case {
        year: 2025,
        amount: Some(left),
        ..case
    };
    let resubmitted = b.after(date, 5, 12);
    granted(b, resubmitted, &case, left);

    // 2025: a medical large-model scenario.
    let date = b.between(day(2025, 6, 2), day(2025, 6, 30));
    let amount = b.amount(2_000_000, 4_000_000, 100_000);
    let case = Case {
        firm: HUIYI,
        provision: "M5.model_scenario",
        year: 2025,
        amount: Some(amount),
        basis: scenario_basis("ZZ-M5-2025-004"),
        reviewer: REV_KJJ,
        approver: APPR_GXJ_ZHOU,
    };
    granted(b, date, &case, amount);

    // 2026: a smart-city scenario withdrawn by the firm (the scenario was rescoped).
    let date = b.between(day(2026, 3, 2), day(2026, 3, 20));
    let amount = b.amount(2_000_000, 3_500_000, 100_000);
    let id = b.submit(
        date,
        &LVCHENG,
        "M5.model_scenario",
        2026,
        Some(amount),
        scenario_basis("ZZ-M5-2026-002"),
        None,
    );
    let withdrawn_on = b.after(date, 10, 30);
    b.withdraw(withdrawn_on, &id, &LVCHENG);

    // 2026: a legal-services language model scenario.
    let date = b.between(day(2026, 5, 11), day(2026, 6, 12));
    let amount = b.amount(1_500_000, 3_000_000, 100_000);
    let case = Case {
        firm: ZHIXING,
        provision: "M5.model_scenario",
        year: 2026,
        amount: Some(amount),
        basis: scenario_basis("ZZ-M5-2026-007"),
        reviewer: REV_DSJ,
        approver: APPR_FGW,
    };
    granted(b, date, &case, amount);
}

// -------------------------------------------------------------------------------------------
// M6 创新平台

fn platforms(b: &mut Builder) {
    // A national key laboratory recognised in September 2024: the lead gets 5,000,000 once
    // and opens a 10,000,000 five-year programme; a co-builder gets 1,000,000.
    let recognised = b.between(day(2024, 9, 2), day(2024, 9, 27));
    let date = b.between(day(2024, 10, 8), day(2024, 10, 18));
    let case = Case {
        firm: ZHIYUAN_LAB,
        provision: "M6.key_lab_lead",
        year: 2024,
        amount: None,
        basis: recognition(recognised),
        reviewer: REV_KJJ,
        approver: APPR_KJJ,
    };
    let (lab, _) = granted(b, date, &case, 5_000_000);

    let date = b.between(day(2024, 10, 21), day(2024, 10, 31));
    let case = Case {
        firm: HUANGHE_INFO,
        provision: "M6.key_lab_cobuilder",
        year: 2024,
        amount: Some(1_000_000),
        basis: recognition(recognised),
        reviewer: REV_KJJ,
        approver: APPR_FGW,
    };
    granted(b, date, &case, 1_000_000);

    // Tranches by R&D spend: at most 3.5 + 3.5 + 3.0 = 10.0 million, inside the envelope.
    for (year, from, to, low, high) in [
        (
            2025,
            day(2025, 3, 10),
            day(2025, 3, 24),
            2_500_000,
            3_500_000,
        ),
        (
            2026,
            day(2026, 3, 9),
            day(2026, 3, 23),
            2_500_000,
            3_500_000,
        ),
        // Submitted by early March 2027 and paid by late April, before 2027-05-21.
        (
            2027,
            day(2027, 2, 22),
            day(2027, 3, 5),
            2_000_000,
            3_000_000,
        ),
    ] {
        let date = b.between(from, to);
        let amount = b.amount(low, high, 100_000);
        let rd_spend = b.amount(18_000_000, 30_000_000, 10_000);
        let case = Case {
            firm: ZHIYUAN_LAB,
            provision: "M6.key_lab_programme",
            year,
            amount: Some(amount),
            basis: json!({"lab": lab, "rd_spend": crate::builder::yuan(rd_spend)}),
            reviewer: REV_KJJ,
            approver: APPR_KJJ,
        };
        granted(b, date, &case, amount);
    }

    // 2025: a national technology innovation centre.
    let recognised = b.between(day(2025, 4, 1), day(2025, 4, 25));
    let date = b.between(day(2025, 5, 12), day(2025, 5, 30));
    let case = Case {
        firm: CHUANGAN,
        provision: "M6.innovation_center_lead",
        year: 2025,
        amount: None,
        basis: recognition(recognised),
        reviewer: REV_GXJ,
        approver: APPR_FGW,
    };
    granted(b, date, &case, 5_000_000);
}

// -------------------------------------------------------------------------------------------
// M7 智能应用场景

/// A scenario project: 30% of the actual investment (a multiple of 10,000, so 30% is whole
/// yuan), at most 5,000,000.
fn scene_project(
    firm: FirmSpec,
    year: i32,
    investment_yuan: i64,
    reviewer: Staff,
    approver: Staff,
) -> Case {
    let amount = (investment_yuan * 3 / 10).min(5_000_000);
    Case {
        firm,
        provision: "M7.scenario_project",
        year,
        amount: Some(amount),
        basis: json!({"actual_investment": crate::builder::yuan(investment_yuan)}),
        reviewer,
        approver,
    }
}

fn smart_scenes(b: &mut Builder) {
    // 2024: provincial smart workshops and a smart factory.
    for (firm, provision, fixed) in [
        (&NAIHUO, "M7.provincial_smart_workshop", 300_000),
        (&KANGRUN, "M7.provincial_smart_workshop", 300_000),
        (&HUARUI, "M7.provincial_smart_factory", 500_000),
    ] {
        let recognised = b.between(day(2024, 5, 27), day(2024, 6, 21));
        let date = b.between(day(2024, 7, 1), day(2024, 7, 31));
        one_time_award(
            b,
            date,
            firm,
            provision,
            2024,
            fixed,
            recognised,
            APPR_GXJ_FENG,
        );
    }

    // 2024: 智能物流, reviewed by 市物流口岸局. Paid in full; in 2026 an audit finds the
    // investment was overstated and 30% of the shortfall is clawed back, partly repaid.
    let date = b.between(day(2024, 6, 17), day(2024, 7, 12));
    let investment = b.amount(6_000_000, 15_000_000, 10_000);
    let case = scene_project(LIANHANG, 2024, investment, REV_WLKA, APPR_GXJ_FENG);
    let amount = case.amount.unwrap_or_default();
    let (logistics, _) = granted(b, date, &case, amount);
    let audited_on = b.between(day(2026, 3, 2), day(2026, 3, 27));
    let shortfall = b.amount(500_000, 2_000_000, 10_000);
    let clawed = shortfall * 3 / 10;
    let reason =
        format!("专项审计发现项目实际投资额较申报少{shortfall}元,按30%比例追回多拨资金{clawed}元");
    let clawback = b.clawback(audited_on, &logistics, clawed, &reason);
    let repaid_on = b.after(audited_on, 15, 40);
    b.repay(repaid_on, &clawback, clawed * 2 / 5 / 1_000 * 1_000);

    // 2024: 智慧农业, reviewed by 市农委.
    let date = b.between(day(2024, 9, 2), day(2024, 9, 30));
    let investment = b.amount(4_000_000, 12_000_000, 10_000);
    let case = scene_project(SHUZHI_NONGYE, 2024, investment, REV_NW, APPR_KJJ);
    let amount = case.amount.unwrap_or_default();
    granted(b, date, &case, amount);

    // 2025: national and provincial recognitions.
    for (firm, provision, fixed) in [
        (&JINGGONG, "M7.national_demo_factory", 3_000_000),
        (&HENGDA, "M7.national_excellent_scenario", 1_000_000),
        (&YULAN, "M7.provincial_benchmark", 1_000_000),
        (&RUIFENG, "M7.provincial_smart_factory", 500_000),
    ] {
        let recognised = b.between(day(2024, 12, 2), day(2024, 12, 20));
        let date = b.between(day(2025, 2, 17), day(2025, 3, 28));
        let approver = b.pick(&[APPR_GXJ_FENG, APPR_GXJ_ZHOU]);
        one_time_award(b, date, firm, provision, 2025, fixed, recognised, approver);
    }

    // 2025: 智能诊疗, reviewed by 市卫健委, approved at a reduced amount (核减).
    let date = b.between(day(2025, 5, 12), day(2025, 6, 20));
    let investment = b.amount(5_000_000, 14_000_000, 10_000);
    let case = scene_project(HUIYI, 2025, investment, REV_WJW, APPR_FGW);
    let requested = case.amount.unwrap_or_default();
    let id = b.submit(
        date,
        &case.firm,
        case.provision,
        case.year,
        case.amount,
        case.basis.clone(),
        None,
    );
    let reviewed_on = b.after(date, 10, 20);
    b.review(
        reviewed_on,
        &id,
        REV_WJW,
        true,
        "部分设备投资不属于人工智能应用,建议核减后按核定金额支持",
    );
    let reduced = requested * 9 / 10 / 1_000 * 1_000;
    let approved_on = b.after(reviewed_on, 3, 12);
    b.approve(approved_on, &id, APPR_FGW, reduced, None);
    let ordered_on = b.after(approved_on, 5, 20);
    b.pay(ordered_on, &id, reduced);

    // 2025: 智能教育, reviewed by 市教育局 and rejected.
    let date = b.between(day(2025, 9, 1), day(2025, 9, 26));
    let investment = b.amount(3_000_000, 8_000_000, 10_000);
    let case = scene_project(BOXUE, 2025, investment, REV_JYJ, APPR_FGW);
    let id = b.submit(
        date,
        &case.firm,
        case.provision,
        case.year,
        case.amount,
        case.basis.clone(),
        None,
    );
    let rejected_on = b.after(date, 10, 25);
    b.reject(
        rejected_on,
        &id,
        REV_JYJ,
        "项目尚未完成竣工验收,实际投资额无法确认,不予支持",
    );

    // 2026: a national excellent scenario and a provincial smart workshop.
    for (firm, provision, fixed) in [
        (&HUANGHE_ZZ, "M7.national_excellent_scenario", 1_000_000),
        (&JIUZHOU, "M7.provincial_smart_workshop", 300_000),
    ] {
        let recognised = b.between(day(2025, 12, 1), day(2025, 12, 26));
        let date = b.between(day(2026, 2, 23), day(2026, 3, 20));
        one_time_award(
            b,
            date,
            firm,
            provision,
            2026,
            fixed,
            recognised,
            APPR_GXJ_ZHOU,
        );
    }

    // 2026: 智慧文旅, reviewed by 市文化广电和旅游局.
    let date = b.between(day(2026, 4, 13), day(2026, 6, 19));
    let investment = b.amount(3_000_000, 9_000_000, 10_000);
    let case = scene_project(WENLV, 2026, investment, REV_WGL, APPR_GXJ_ZHOU);
    let amount = case.amount.unwrap_or_default();
    granted(b, date, &case, amount);

    // Late 2026: an autonomous-driving test field; 30% would pass the cap, so it asks for
    // 5,000,000. Reviewed, waiting for the approver.
    let date = b.between(day(2026, 10, 26), day(2026, 11, 13));
    let investment = b.amount(20_000_000, 40_000_000, 10_000);
    let case = scene_project(ZHONGMOU, 2026, investment, REV_GXJ, APPR_GXJ_ZHOU);
    reviewed(b, date, &case);
}

// -------------------------------------------------------------------------------------------
// M8 企业主体培育

/// From one date to another, both inclusive.
type Window = (NaiveDate, NaiveDate);
type Listing = (&'static FirmSpec, &'static str, i32, i64, Window, Window);
type Event = (&'static FirmSpec, &'static str, i32, (i64, i64), Window);

fn enterprises(b: &mut Builder) {
    // (firm, provision, fiscal year, fixed amount, list published, application filed)
    let awards: [Listing; 11] = [
        // 2024 lists (published in spring and summer).
        (
            &JIGUANG,
            "M8.unicorn",
            2024,
            5_000_000,
            (day(2024, 4, 8), day(2024, 4, 26)),
            (day(2024, 6, 17), day(2024, 7, 5)),
        ),
        (
            &YUANQI,
            "M8.potential_unicorn",
            2024,
            2_000_000,
            (day(2024, 4, 8), day(2024, 4, 26)),
            (day(2024, 6, 17), day(2024, 7, 12)),
        ),
        (
            &XINGTU,
            "M8.little_giant",
            2024,
            1_000_000,
            (day(2024, 7, 15), day(2024, 8, 9)),
            (day(2024, 8, 19), day(2024, 9, 13)),
        ),
        (
            &HUIYAN,
            "M8.little_giant",
            2024,
            1_000_000,
            (day(2024, 7, 15), day(2024, 8, 9)),
            (day(2024, 8, 19), day(2024, 9, 13)),
        ),
        (
            &ANDUN,
            "M8.benchmark_enterprise",
            2024,
            100_000,
            (day(2024, 9, 2), day(2024, 9, 20)),
            (day(2024, 10, 8), day(2024, 10, 31)),
        ),
        (
            &SHENTONG,
            "M8.benchmark_enterprise",
            2024,
            100_000,
            (day(2024, 9, 2), day(2024, 9, 20)),
            (day(2024, 10, 8), day(2024, 10, 31)),
        ),
        // 2025.
        (
            &QIMING,
            "M8.hidden_champion",
            2025,
            1_000_000,
            (day(2025, 1, 6), day(2025, 2, 14)),
            (day(2025, 3, 3), day(2025, 3, 28)),
        ),
        (
            &MINGMOU,
            "M8.potential_unicorn",
            2025,
            2_000_000,
            (day(2025, 4, 7), day(2025, 4, 25)),
            (day(2025, 5, 6), day(2025, 5, 30)),
        ),
        (
            &JIUZHOU,
            "M8.little_giant",
            2025,
            1_000_000,
            (day(2025, 7, 7), day(2025, 7, 25)),
            (day(2025, 8, 4), day(2025, 8, 29)),
        ),
        (
            &LINGXI,
            "M8.benchmark_enterprise",
            2025,
            100_000,
            (day(2025, 9, 1), day(2025, 9, 19)),
            (day(2025, 10, 9), day(2025, 10, 31)),
        ),
        // 2026.
        (
            &ZHONGYUAN_ZN,
            "M8.benchmark_enterprise",
            2026,
            100_000,
            (day(2026, 3, 2), day(2026, 3, 20)),
            (day(2026, 4, 7), day(2026, 4, 30)),
        ),
    ];
    for (firm, provision, year, fixed, recognised, submitted) in awards {
        let recognised = b.between(recognised.0, recognised.1);
        let date = b.between(submitted.0, submitted.1);
        let approver = b.pick(&[APPR_GXJ_ZHOU, APPR_GXJ_FENG]);
        one_time_award(b, date, firm, provision, year, fixed, recognised, approver);
    }

    // 2025: a little giant whose first payout bounces (the account name does not match the
    // licence); it is ordered again under a new payout id and confirmed.
    let recognised = b.between(day(2025, 7, 7), day(2025, 7, 25));
    let date = b.between(day(2025, 8, 4), day(2025, 8, 29));
    let case = Case {
        firm: JINGCE,
        provision: "M8.little_giant",
        year: 2025,
        amount: None,
        basis: recognition(recognised),
        reviewer: REV_GXJ,
        approver: APPR_GXJ_ZHOU,
    };
    let (id, approved_on) = approved(b, date, &case, 1_000_000);
    let ordered_on = b.after(approved_on, 5, 15);
    let bounced = b.order(ordered_on, &id, 1_000_000, FIN_WANG);
    let failed_on = b.after(ordered_on, 1, 3);
    b.fail(
        failed_on,
        &bounced,
        FIN_CHEN,
        "收款账户户名与营业执照登记名称不一致,银行退票",
    );
    let again_on = b.after(failed_on, 7, 20);
    let again = b.order(again_on, &id, 1_000_000, FIN_CHEN);
    let confirmed_on = b.after(again_on, 1, 3);
    b.confirm(confirmed_on, &again, FIN_ZHAO, None);

    // 2025: a 2024 little giant applies again: the award is once only.
    let recognised = b.between(day(2025, 7, 7), day(2025, 7, 25));
    let date = b.between(day(2025, 8, 18), day(2025, 9, 12));
    b.submit(
        date,
        &XINGTU,
        "M8.little_giant",
        2025,
        None,
        recognition(recognised),
        Some("already_awarded"),
    );

    // 2026: the 2024 potential unicorn makes the unicorn list; stacking the two is an open
    // policy question, off by default, so the application is refused.
    let recognised = b.between(day(2026, 3, 16), day(2026, 4, 3));
    let date = b.between(day(2026, 4, 13), day(2026, 5, 8));
    b.submit(
        date,
        &YUANQI,
        "M8.unicorn",
        2026,
        Some(5_000_000),
        recognition(recognised),
        Some("already_awarded"),
    );

    // 2026: a hidden champion.
    let recognised = b.between(day(2026, 1, 12), day(2026, 2, 13));
    let date = b.between(day(2026, 3, 2), day(2026, 3, 27));
    one_time_award(
        b,
        date,
        &HANGGANG,
        "M8.hidden_champion",
        2026,
        1_000_000,
        recognised,
        APPR_GXJ_FENG,
    );
}

// -------------------------------------------------------------------------------------------
// M9 产业集聚

fn industrial_parks(b: &mut Builder) {
    // 2024: a provincial demonstration base. Its payout shows segregation of duties: the
    // officer who ordered it may not confirm it.
    let recognised = b.between(day(2024, 5, 27), day(2024, 6, 21));
    let date = b.between(day(2024, 7, 15), day(2024, 8, 9));
    let case = Case {
        firm: GAOXIN_PARK,
        provision: "M9.provincial_demo_base",
        year: 2024,
        amount: None,
        basis: recognition(recognised),
        reviewer: REV_GXJ,
        approver: APPR_GXJ_FENG,
    };
    let (id, approved_on) = approved(b, date, &case, 1_000_000);
    let ordered_on = b.after(approved_on, 5, 15);
    let payout = b.order(ordered_on, &id, 1_000_000, FIN_WANG);
    let attempted_on = b.after(ordered_on, 1, 2);
    b.confirm(
        attempted_on,
        &payout,
        FIN_WANG,
        Some("segregation_of_duties"),
    );
    let confirmed_on = b.after(attempted_on, 1, 3);
    b.confirm(confirmed_on, &payout, FIN_ZHAO, None);

    // 2025: a national demonstration base; 2026: another provincial one.
    let recognised = b.between(day(2025, 3, 3), day(2025, 3, 28));
    let date = b.between(day(2025, 4, 14), day(2025, 5, 16));
    one_time_award(
        b,
        date,
        &KONGGANG_PARK,
        "M9.national_demo_base",
        2025,
        2_000_000,
        recognised,
        APPR_GXJ_ZHOU,
    );
    let recognised = b.between(day(2026, 5, 11), day(2026, 6, 5));
    let date = b.between(day(2026, 6, 22), day(2026, 7, 17));
    one_time_award(
        b,
        date,
        &JINSHUI_PARK,
        "M9.provincial_demo_base",
        2026,
        1_000_000,
        recognised,
        APPR_GXJ_FENG,
    );
}

// -------------------------------------------------------------------------------------------
// M10 会议、论坛、展会

fn event(name: &str) -> Value {
    json!({"event_name": name})
}

fn events(b: &mut Builder) {
    // (organiser, event, fiscal year, amount range, application filed)
    let held: [Event; 3] = [
        (
            &XIEHUI,
            "2024中国(郑州)人工智能产业发展大会",
            2024,
            (300_000, 300_000),
            (day(2024, 9, 2), day(2024, 9, 20)),
        ),
        (
            &HUIZHAN,
            "2025中原算力与大模型创新论坛",
            2025,
            (150_000, 300_000),
            (day(2025, 6, 9), day(2025, 7, 4)),
        ),
        (
            &XIEHUI,
            "2026郑州人工智能创新应用博览会",
            2026,
            (200_000, 300_000),
            (day(2026, 5, 11), day(2026, 6, 12)),
        ),
    ];
    for (firm, name, year, (low, high), (from, to)) in held {
        let date = b.between(from, to);
        let amount = b.amount(low, high, 10_000);
        let approver = b.pick(&[APPR_GXJ_ZHOU, APPR_FGW]);
        let case = Case {
            firm: *firm,
            provision: "M10.event",
            year,
            amount: Some(amount),
            basis: event(name),
            reviewer: REV_SWJ,
            approver,
        };
        granted(b, date, &case, amount);
    }
    // Late 2026: an exhibition filed for support, not yet reviewed.
    let date = b.between(day(2026, 11, 23), day(2026, 12, 18));
    let amount = b.amount(200_000, 300_000, 10_000);
    b.submit(
        date,
        &HUIZHAN,
        "M10.event",
        2026,
        Some(amount),
        event("2026郑州国际人工智能产业展"),
        None,
    );
}
