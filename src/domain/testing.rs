//! A given/when/then harness for aggregates: `given(history).when(command).then(events)`.

use super::Aggregate;

pub struct Given<A: Aggregate> {
    state: A,
}

pub fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = history.into_iter().collect();
    Given {
        state: A::fold(&history),
    }
}

impl<A: Aggregate> Given<A>
where
    A::Event: std::fmt::Debug + PartialEq,
    A::Error: PartialEq,
{
    pub fn when(self, command: A::Command) -> Then<A> {
        let result = self.state.decide(&command);
        Then {
            state: self.state,
            result,
        }
    }
}

pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A>
where
    A::Event: std::fmt::Debug + PartialEq,
    A::Error: PartialEq + std::fmt::Debug,
{
    /// Asserts the decision and returns the state after applying it.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events.iter().fold(self.state, |s, e| s.apply(e))
            }
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    #[track_caller]
    pub fn then_error(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }
}
