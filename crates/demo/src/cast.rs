//! Who acts in the demo: the officers of the responsible bureaus and the firms.
//!
//! The cast does not depend on the seed, so a service can mint demo tokens for it once
//! ([`crate::demo_principals`]) whatever seed the scenario ran with.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// An officer: a person with one role in one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staff {
    pub id: &'static str,
    pub role: &'static str,
    pub unit: &'static str,
}

impl Staff {
    pub(crate) fn actor(&self) -> Value {
        json!({"id": self.id, "role": self.role, "unit": self.unit})
    }
}

const fn staff(id: &'static str, role: &'static str, unit: &'static str) -> Staff {
    Staff { id, role, unit }
}

pub const ADMIN: Staff = staff("admin.ops", "admin", "市大数据局");
pub const GOVERNMENT: Staff = staff("gov.office", "government", "市人民政府");
pub const AUDITOR: Staff = staff("audit.qian", "auditor", "市审计局");

/// 市财政局: allocates budgets and orders payouts.
pub const FIN_WANG: Staff = staff("fin.wang", "finance", "市财政局");
/// 市财政局: confirms payouts with the bank's reference.
pub const FIN_ZHAO: Staff = staff("fin.zhao", "finance", "市财政局");
/// 市财政局: orders payouts, handles failed payouts, clawbacks and repayments.
pub const FIN_CHEN: Staff = staff("fin.chen", "finance", "市财政局");

pub const REV_GXJ: Staff = staff("rev.gxj.zhang", "reviewer", "市工信局");
pub const REV_KJJ: Staff = staff("rev.kjj.liu", "reviewer", "市科技局");
pub const REV_DSJ: Staff = staff("rev.dsj.sun", "reviewer", "市大数据局");
pub const REV_WJW: Staff = staff("rev.wjw.ma", "reviewer", "市卫健委");
pub const REV_JYJ: Staff = staff("rev.jyj.hu", "reviewer", "市教育局");
pub const REV_NW: Staff = staff("rev.nw.guo", "reviewer", "市农委");
pub const REV_WLKA: Staff = staff("rev.wlka.lin", "reviewer", "市物流口岸局");
pub const REV_WGL: Staff = staff("rev.wgl.xu", "reviewer", "市文化广电和旅游局");
pub const REV_SWJ: Staff = staff("rev.swj.tang", "reviewer", "市商务局");

pub const APPR_GXJ_ZHOU: Staff = staff("appr.gxj.zhou", "approver", "市工信局");
pub const APPR_GXJ_FENG: Staff = staff("appr.gxj.feng", "approver", "市工信局");
pub const APPR_KJJ: Staff = staff("appr.kjj.wu", "approver", "市科技局");
pub const APPR_DSJ: Staff = staff("appr.dsj.zheng", "approver", "市大数据局");
pub const APPR_FGW: Staff = staff("appr.fgw.deng", "approver", "市发展改革委");

/// Every officer of the demo.
pub const STAFF: [Staff; 20] = [
    ADMIN,
    GOVERNMENT,
    AUDITOR,
    FIN_WANG,
    FIN_ZHAO,
    FIN_CHEN,
    REV_GXJ,
    REV_KJJ,
    REV_DSJ,
    REV_WJW,
    REV_JYJ,
    REV_NW,
    REV_WLKA,
    REV_WGL,
    REV_SWJ,
    APPR_GXJ_ZHOU,
    APPR_GXJ_FENG,
    APPR_KJJ,
    APPR_DSJ,
    APPR_FGW,
];

/// Registration kind: the first two characters of a USCC (GB 32100-2015 §4.1–4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// 工商 / 企业 ("91").
    Company,
    /// 民政 / 社会团体 ("51"), e.g. an industry association.
    Association,
}

/// A demo firm. Its USCC is derived from `key`, so it is the same in every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmSpec {
    /// Short Latin handle, used in actor ids (`applicant.<key>`).
    pub key: &'static str,
    pub name: &'static str,
    /// 行政区划代码 of the registering authority (郑州市 and its districts).
    pub region: &'static str,
    pub registered: Registered,
}

impl FirmSpec {
    /// The firm's unified social credit code, with a valid check character.
    pub fn uscc(&self) -> String {
        const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let (head, series) = match self.registered {
            Registered::Company => ("91", "MA"),
            Registered::Association => ("51", "MJ"),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(fnv1a(self.key.as_bytes()));
        let tail: String = (0..7)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        let first17 = format!("{head}{}{series}{tail}", self.region);
        // Every character comes from the USCC alphabet, so the check character exists.
        fundledger_ledger::uscc::complete(&first17).unwrap_or(first17)
    }

    pub(crate) fn applicant_id(&self) -> String {
        format!("applicant.{}", self.key)
    }

    pub(crate) fn applicant(&self) -> Value {
        json!({"id": self.applicant_id(), "role": "applicant", "firm": self.uscc()})
    }

    pub(crate) fn firm_object(&self) -> Value {
        json!({"uscc": self.uscc(), "name": self.name})
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const fn company(key: &'static str, name: &'static str, region: &'static str) -> FirmSpec {
    FirmSpec {
        key,
        name,
        region,
        registered: Registered::Company,
    }
}

// 行政区划: 410100 郑州市, 410102 中原区, 410103 二七区, 410104 管城回族区, 410105 金水区,
// 410108 惠济区, 410122 中牟县, 410182 荥阳市, 410184 新郑市.

// AI, software and compute users.
pub const TIANSHU: FirmSpec = company("tianshu", "郑州天枢大模型科技有限公司", "410100");
pub const YUNZHISUAN: FirmSpec = company("yunzhisuan", "郑州云智算科技有限公司", "410105");
pub const ZHONGYUAN_ZN: FirmSpec = company("zhongyuanzn", "郑州中原智能科技有限公司", "410102");
pub const XINGTU: FirmSpec = company("xingtu", "郑州星图视觉智能科技有限公司", "410100");
pub const HUIYI: FirmSpec = company("huiyi", "郑州慧医智能科技有限公司", "410105");
pub const YUSUAN: FirmSpec = company("yusuan", "河南豫算信息技术有限公司", "410100");
pub const ZHIXING: FirmSpec = company("zhixing", "郑州知行语言智能科技有限公司", "410105");
pub const QIMING: FirmSpec = company("qiming", "郑州启明机器人有限公司", "410182");
pub const SHUZHI_NONGYE: FirmSpec = company("shuzhinongye", "郑州数智农业科技有限公司", "410122");
pub const YUFENG: FirmSpec = company("yufeng", "郑州驭风自动驾驶科技有限公司", "410184");
pub const BOXUE: FirmSpec = company("boxue", "郑州博学智能教育科技有限公司", "410105");
pub const WENLV: FirmSpec = company("wenlv", "郑州文旅云图数字科技有限公司", "410103");
pub const LIANHANG: FirmSpec = company("lianhang", "郑州链航智慧物流有限公司", "410184");
pub const ANDUN: FirmSpec = company("andun", "郑州安盾人工智能安全技术有限公司", "410100");
pub const SHENTONG: FirmSpec = company("shentong", "郑州深瞳医疗影像科技有限公司", "410105");
pub const SONGYUE: FirmSpec = company("songyue", "郑州嵩岳算力服务有限公司", "410100");
pub const LVCHENG: FirmSpec = company("lvcheng", "郑州绿城智慧城市科技有限公司", "410104");
pub const SHANGDU: FirmSpec = company("shangdu", "郑州商都数据科技有限公司", "410104");
pub const HUIYAN: FirmSpec = company("huiyan", "郑州中科慧眼智能科技有限公司", "410100");
pub const LINGXI: FirmSpec = company("lingxi", "郑州灵犀语音科技有限公司", "410105");
pub const XINDONG: FirmSpec = company("xindong", "郑州芯动智能科技有限公司", "410184");
pub const ZHIGU: FirmSpec = company("zhigu", "郑州智谷软件有限公司", "410102");
pub const LANGRUN: FirmSpec = company("langrun", "郑州朗润数字孪生科技有限公司", "410108");
pub const JIGUANG: FirmSpec = company("jiguang", "郑州极光智能科技股份有限公司", "410100");
pub const YUANQI: FirmSpec = company("yuanqi", "郑州元启大模型科技有限公司", "410105");
pub const MINGMOU: FirmSpec = company("mingmou", "郑州明眸视觉科技有限公司", "410100");
pub const HANGGANG: FirmSpec = company("hanggang", "郑州航港智联科技有限公司", "410184");
pub const ZHONGMOU: FirmSpec = company("zhongmou", "郑州中牟智能网联汽车测试有限公司", "410122");

// Research institutes and innovation platforms.
pub const ZHIYUAN_LAB: FirmSpec = company("zhiyuan", "郑州中原人工智能研究院有限公司", "410100");
pub const HUANGHE_INFO: FirmSpec =
    company("huangheinfo", "郑州黄河信息技术研究院有限公司", "410105");
pub const CHUANGAN: FirmSpec = company("chuangan", "郑州中原智能传感创新中心有限公司", "410100");

// Manufacturers.
pub const JINGGONG: FirmSpec = company("jinggong", "郑州精工重型机械股份有限公司", "410182");
pub const HENGDA: FirmSpec = company("hengda", "郑州恒达汽车零部件有限公司", "410122");
pub const YULAN: FirmSpec = company("yulan", "郑州豫缆电缆股份有限公司", "410182");
pub const HUARUI: FirmSpec = company("huarui", "郑州华锐纺织科技有限公司", "410103");
pub const RUIFENG: FirmSpec = company("ruifeng", "郑州瑞丰制药股份有限公司", "410184");
pub const KANGRUN: FirmSpec = company("kangrun", "郑州康润食品有限公司", "410108");
pub const NAIHUO: FirmSpec = company("naihuo", "郑州新材耐火材料有限公司", "410182");
pub const JIUZHOU: FirmSpec = company("jiuzhou", "郑州九州通达智能装备有限公司", "410122");
pub const JINGCE: FirmSpec = company("jingce", "郑州精测仪器仪表有限公司", "410102");
pub const HUANGHE_ZZ: FirmSpec = company("huanghezz", "郑州黄河智能制造有限公司", "410108");

// Industrial park operators (measure 9).
pub const GAOXIN_PARK: FirmSpec = company(
    "gaoxinpark",
    "郑州高新区人工智能产业园发展有限公司",
    "410100",
);
pub const KONGGANG_PARK: FirmSpec =
    company("konggangpark", "郑州航空港智算产业园运营有限公司", "410184");
pub const JINSHUI_PARK: FirmSpec =
    company("jinshuipark", "郑州金水科教园区运营管理有限公司", "410105");

// Event organisers (measure 10).
pub const XIEHUI: FirmSpec = FirmSpec {
    key: "xiehui",
    name: "郑州市人工智能产业协会",
    region: "410100",
    registered: Registered::Association,
};
pub const HUIZHAN: FirmSpec = company("huizhan", "郑州国际会展有限责任公司", "410104");

/// Every firm of the demo; each one submits at least one application.
pub const FIRMS: [FirmSpec; 46] = [
    TIANSHU,
    YUNZHISUAN,
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
    SONGYUE,
    LVCHENG,
    SHANGDU,
    HUIYAN,
    LINGXI,
    XINDONG,
    ZHIGU,
    LANGRUN,
    JIGUANG,
    YUANQI,
    MINGMOU,
    HANGGANG,
    ZHONGMOU,
    ZHIYUAN_LAB,
    HUANGHE_INFO,
    CHUANGAN,
    JINGGONG,
    HENGDA,
    YULAN,
    HUARUI,
    RUIFENG,
    KANGRUN,
    NAIHUO,
    JIUZHOU,
    JINGCE,
    HUANGHE_ZZ,
    GAOXIN_PARK,
    KONGGANG_PARK,
    JINSHUI_PARK,
    XIEHUI,
    HUIZHAN,
];
