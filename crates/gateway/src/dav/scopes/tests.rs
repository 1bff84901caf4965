//! The path and scope rules' tests: refused paths, what each request needs, the walk, the
//! `MKCOL` body, the collection-kind cache.

use proptest::prelude::*;

use super::*;

fn scopes() -> Scopes {
    Scopes::new(
        &[CONTACTS.to_owned(), CALENDARS.to_owned()],
        &[("/*/contacts/".to_owned(), CONTACTS.to_owned())],
    )
}

fn needed(method: &str, path: &str, location: Location) -> Vec<String> {
    let path = DavPath::parse(path).unwrap();
    let request = Access { method, depth: None, path: &path, location, elsewhere: &[], body: None };
    scopes().needed(&request).into_iter().collect()
}

const CALENDAR: Location = Location::Inside { kind: Kind::Calendar, below: 1 };
const BOOK: Location = Location::Inside { kind: Kind::AddressBook, below: 0 };

#[test]
fn paths_are_parsed_or_refused() {
    let path = DavPath::parse("/ann%40example.com/contacts/bob.vcf").unwrap();
    assert_eq!(path.len(), 3);
    assert_eq!(path.raw_prefix(1), "/ann%40example.com/");
    assert_eq!(path.decoded_prefix(2), "/ann@example.com/contacts/");
    assert_eq!(DavPath::parse("/").unwrap().len(), 0);
    assert_eq!(DavPath::parse("/ann/").unwrap().len(), 1);
    for refused in [
        "/ann/contacts/..%2Fcalendar/",
        "/ann/contacts/%2e%2e/calendar/",
        "/ann/contacts/..;/calendar/",
        "/ann/contacts/.;x/calendar/",
        "/ann/;x/calendar/",
        "/ann/a%2Fb/",
        "/ann/./calendar/",
        "/ann//calendar/",
        "//calendar/",
        "/ann/%ZZ",
        "/ann/%",
        "/ann/%FF",
        "/ann/a%5Cb",
        "/ann/a%00b",
        "relative",
        "",
    ] {
        assert_eq!(DavPath::parse(refused), None, "{refused}");
    }
}

#[test]
fn what_a_collection_is_comes_from_its_resourcetype() {
    let radicale = |inner: &str| {
        format!(
            "<?xml version='1.0' encoding='utf-8'?>\n<multistatus xmlns=\"DAV:\" \
             xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><response><href>/ann/calendar/</href>\
             <propstat><prop><resourcetype>{inner}</resourcetype></prop>\
             <status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
        )
    };
    assert_eq!(Kind::from_multistatus(&radicale("<C:calendar /><collection />")), Kind::Calendar);
    assert_eq!(
        Kind::from_multistatus(&radicale("<collection/><CR:addressbook xmlns:CR=\"x\"/>")),
        Kind::AddressBook
    );
    assert_eq!(Kind::from_multistatus(&radicale("<principal /><collection />")), Kind::Plain);
    assert_eq!(Kind::from_multistatus(&radicale("")), Kind::Item);
    assert_eq!(
        Kind::from_multistatus(&radicale("<collection/><C:schedule-inbox/>")),
        Kind::Unknown
    );
    assert_eq!(Kind::from_multistatus(&radicale("<C:calendar/><C:addressbook/>")), Kind::Unknown);
    let empty = "<multistatus xmlns=\"DAV:\"><response><href>/ann/calendar/x.ics</href>\
        <propstat><prop><resourcetype/></prop></propstat></response></multistatus>";
    assert_eq!(Kind::from_multistatus(empty), Kind::Item);
    assert_eq!(Kind::from_multistatus("{\"not\": \"xml\"}"), Kind::Unknown);
}

#[test]
fn a_walk_stops_at_the_first_calendar_or_address_book() {
    use Kind::*;
    assert_eq!(
        Location::from_walk(&[Plain, Calendar], 3),
        Location::Inside { kind: Calendar, below: 1 }
    );
    assert_eq!(Location::from_walk(&[Plain, Absent], 2), Location::Outside);
    assert_eq!(Location::from_walk(&[Plain, Plain], 2), Location::Outside);
    assert_eq!(Location::from_walk(&[Plain, Unknown], 3), Location::Unknown);
    assert_eq!(Location::from_walk(&[Plain; MAX_WALK], MAX_WALK + 1), Location::Unknown);
    assert_eq!(Location::from_walk(&[], 0), Location::Outside);
}

#[test]
fn requests_need_the_scope_of_what_they_touch() {
    let (contacts, calendars) = (vec![CONTACTS.to_owned()], vec![CALENDARS.to_owned()]);
    let both = vec![CALENDARS.to_owned(), CONTACTS.to_owned()];
    let any: Vec<String> = vec![];
    // Inside a calendar, whatever it is called.
    assert_eq!(needed("GET", "/ann/5f1e/x.ics", CALENDAR), calendars);
    assert_eq!(needed("PUT", "/ann/5f1e/x.ics", CALENDAR), calendars);
    // The address book itself; a rule adds its scope.
    assert_eq!(needed("PROPFIND", "/ann/contacts/", BOOK), contacts);
    assert_eq!(needed("GET", "/ann/CONTACTS/x.ics", CALENDAR), both);
    // Deeper than an item, a kind the door cannot place, or no kind at all.
    let deep = Location::Inside { kind: Kind::Calendar, below: 2 };
    assert_eq!(needed("GET", "/ann/c/d/x.ics", deep), both);
    assert_eq!(needed("GET", "/ann/inbox/", Location::Unknown), both);
    assert_eq!(needed("GET", "/ann/", Location::Outside), both);
    assert_eq!(needed("REPORT", "/ann/", Location::Outside), both);
    // Discovery outside any collection.
    assert_eq!(needed("OPTIONS", "/", Location::Outside), any);
    assert_eq!(needed("GET", "/.well-known/carddav", Location::Outside), any);
    // Making collections.
    assert_eq!(needed("MKCALENDAR", "/ann/x/", Location::Outside), calendars);
    assert_eq!(needed("MKCALENDAR", "/ann/contacts/x/", BOOK), both);
    // Changing what a collection is.
    assert_eq!(needed("PUT", "/ann/contacts/", BOOK), both);
    assert_eq!(needed("PROPPATCH", "/ann/contacts/", BOOK), both);
}

#[test]
fn depth_decides_whether_a_propfind_is_discovery() {
    let path = DavPath::parse("/ann/").unwrap();
    let request = |depth| Access {
        method: "PROPFIND",
        depth,
        path: &path,
        location: Location::Outside,
        elsewhere: &[],
        body: None,
    };
    assert!(scopes().needed(&request(Some("1"))).is_empty());
    assert!(scopes().needed(&request(Some("0"))).is_empty());
    assert_eq!(scopes().needed(&request(Some("infinity"))).len(), 2);
    assert_eq!(scopes().needed(&request(None)).len(), 2);
}

#[test]
fn bodies_say_what_they_make_or_are_unclear() {
    let read = |body: &str, encoded| BodySays::read(body.as_bytes(), encoded);
    let book = "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:mkcol xmlns:D=\"DAV:\" \
        xmlns:C=\"urn:ietf:params:xml:ns:carddav\"><D:set><D:prop><D:resourcetype>\
        <D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>";
    assert_eq!(read(book, false).makes(), Some(Kind::AddressBook));
    assert_eq!(read(book, true).makes(), None);
    assert_eq!(read(&book.replace("addressbook", "calendar"), false).makes(), Some(Kind::Calendar));
    assert_eq!(read(&book.replace("utf-8", "utf-16"), false).makes(), None);
    let both = book.replace("D:collection/", "D:collection/><C:calendar/");
    assert_eq!(read(&both, false).makes(), None);
    assert!(read(book, false).may_change_kind());
    // Thunderbird sets a calendar's colour: that changes no kind.
    let colour = "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:I=\"http://apple.com/ns/ical/\">\
        <D:set><D:prop><I:calendar-color>#ff0000</I:calendar-color></D:prop></D:set>\
        </D:propertyupdate>";
    assert!(!read(colour, false).may_change_kind());
    assert_eq!(read("", false).makes(), None);
    // UTF-16: the letters of `calendar` are not where a byte search would see them.
    let utf16: Vec<u8> = book.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(BodySays::read(&utf16, false).makes(), None);
    assert!(BodySays::read(&utf16, false).may_change_kind());
    let path = DavPath::parse("/ann/new/").unwrap();
    let mut plain = Access {
        method: "MKCOL",
        depth: None,
        path: &path,
        location: Location::Outside,
        elsewhere: &[],
        body: Some(read(book, false)),
    };
    assert_eq!(scopes().needed(&plain).into_iter().collect::<Vec<_>>(), [CONTACTS]);
    plain.body = Some(read("", false));
    assert_eq!(scopes().needed(&plain).len(), 2);
    let inside = Location::Inside { kind: Kind::Calendar, below: 0 };
    let recolour =
        Access { method: "PROPPATCH", location: inside, body: Some(read(colour, false)), ..plain };
    assert_eq!(scopes().needed(&recolour).into_iter().collect::<Vec<_>>(), [CALENDARS]);
}

#[test]
fn a_destination_needs_what_its_place_needs() {
    let path = DavPath::parse("/ann/contacts/a.vcf").unwrap();
    let to = |places: &[Location]| {
        let request = Access {
            method: "MOVE",
            depth: None,
            path: &path,
            location: Location::Inside { kind: Kind::AddressBook, below: 1 },
            elsewhere: places,
            body: None,
        };
        scopes().needed(&request).into_iter().collect::<Vec<_>>()
    };
    let book = Location::Inside { kind: Kind::AddressBook, below: 1 };
    assert_eq!(to(&[book]), [CONTACTS]);
    assert_eq!(to(&[CALENDAR]).len(), 2);
    assert_eq!(to(&[Location::Outside]).len(), 2);
    assert_eq!(to(&[]).len(), 2);
}

#[test]
fn a_multiget_needs_what_its_hrefs_need() {
    let multiget = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
        <C:addressbook-multiget xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\
        <D:prop><D:getetag/><C:address-data/></D:prop>\
        <D:href>/ann/contacts/a.vcf</D:href>\n<D:href> /ann/5f1e/x.ics </D:href>\
        </C:addressbook-multiget>";
    assert_eq!(
        references(multiget.as_bytes(), false),
        Some(vec!["/ann/contacts/a.vcf".to_owned(), "/ann/5f1e/x.ics".to_owned()])
    );
    assert_eq!(references(b"<D:sync-collection xmlns:D=\"DAV:\"/>", false), Some(vec![]));
    for unsure in [
        multiget.replace("x.ics", "x.ics<!-- -->"),
        multiget.replace("x.ics", "&#120;.ics"),
        multiget.replace("</D:href>\n", "<D:b/></D:href>\n"),
        multiget.replace("<D:prop>", "<![CDATA[<D:href>/ann/5f1e/</D:href>]]><D:prop>"),
        multiget.replace("utf-8", "utf-16"),
    ] {
        assert_eq!(references(unsure.as_bytes(), false), None, "{unsure}");
    }
    assert_eq!(references(multiget.as_bytes(), true), None);
    let path = DavPath::parse("/ann/contacts/").unwrap();
    let report = |elsewhere: &[Location], body: &str| {
        let request = Access {
            method: "REPORT",
            depth: Some("1"),
            path: &path,
            location: Location::Inside { kind: Kind::AddressBook, below: 0 },
            elsewhere,
            body: Some(BodySays::read(body.as_bytes(), false)),
        };
        scopes().needed(&request).len()
    };
    let book = Location::Inside { kind: Kind::AddressBook, below: 1 };
    assert_eq!(report(&[book], multiget), 1);
    assert_eq!(report(&[book, CALENDAR], multiget), 2);
    assert_eq!(report(&[], "\u{0}"), 2);
}

#[test]
fn one_scope_decides_nothing() {
    let mail = Scopes::new(&["mail".to_owned()], &[]);
    assert!(!mail.asks_the_back_end());
    let path = DavPath::parse("/x").unwrap();
    let request = Access {
        method: "POST",
        depth: None,
        path: &path,
        location: Location::Outside,
        elsewhere: &[],
        body: None,
    };
    assert!(mail.needed(&request).is_empty());
}

#[test]
fn the_cache_remembers_collections_briefly_and_forgets_on_change() {
    let cache = KindCache::default();
    let now = Instant::now();
    cache.put("ann", "/ann/cal/", Kind::Calendar, now);
    cache.put("ann", "/ann/new/", Kind::Absent, now);
    assert_eq!(cache.get("ann", "/ann/cal/", now), Some(Kind::Calendar));
    assert_eq!(cache.get("bob", "/ann/cal/", now), None);
    assert_eq!(cache.get("ann", "/ann/new/", now), None);
    assert_eq!(cache.get("ann", "/ann/cal/", now + KIND_MEMORY), None);
    cache.forget("ann", "/ann/");
    assert_eq!(cache.get("ann", "/ann/cal/", now), None);
}

proptest! {
    /// Whatever the path, parsing never panics, and a path whose decoded form has a dot
    /// segment never gets through (it could be normalised into another collection).
    #[test]
    fn no_path_escapes_its_collection(path in "(/|[a-z;]|%2[eEfF]|%[0-9a-fA-F]{2}|\\.|%){0,40}") {
        let parsed = DavPath::parse(&path);
        if let Some(decoded) = percent_decode(&path) {
            if decoded.split('/').any(|part| {
                let name = part.split(';').next().unwrap_or_default();
                name == "." || name == ".."
            }) {
                prop_assert!(parsed.is_none());
            }
        } else {
            prop_assert!(parsed.is_none());
        }
    }

    #[test]
    fn reading_an_answer_never_panics(xml in ".{0,200}") {
        let _ = Kind::from_multistatus(&xml);
        let _ = BodySays::read(xml.as_bytes(), false);
        let _ = references(xml.as_bytes(), false);
        let _ = references(xml.as_bytes(), true);
    }
}
